"""multipart/related bodies (RFC 2046, RFC 2387) as PS3.18 uses them: parsing a STOW-RS request as it arrives (each
part straight to a file, never the body in memory), writing a WADO-RS answer."""

from __future__ import annotations

import binascii
import email.message
import email.parser
import email.policy
import hashlib
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


class MultipartError(ValueError):
    pass


@dataclass(frozen=True)
class Part:
    content_type: str
    data: bytes


def media_type_params(header: str) -> tuple[str, dict[str, str]]:
    """('multipart/related', {'type': 'application/dicom', 'boundary': ...}) from a Content-Type or Accept item."""
    message = email.message.Message()
    message["Content-Type"] = header
    params = {key.lower(): value for key, value in message.get_params(failobj=[])[1:]}
    return message.get_content_type(), params


class BodyTooLarge(MultipartError):
    pass


@dataclass(frozen=True)
class SpooledPart:
    """One part of a multipart/related body, written to a file on this host's disk as it arrived."""

    content_type: str
    path: Path
    size: int
    sha256: str


BLOCK = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024  # the headers of one part (or the preamble before the first boundary)


def related_parts_spool(*, content_type: str, stream, folder: Path, max_bytes: int) -> list[SpooledPart]:
    """Parse a multipart/related body from `stream` (anything with read(n)) as it arrives, each part's content
    written to a temporary file in `folder` and hashed on the way: memory holds one block and a boundary's length,
    whatever the body's size. More than `max_bytes` of body raises BodyTooLarge; a body that is not
    multipart/related, or ends before its closing boundary, raises MultipartError. On an error nothing written
    stays; otherwise the caller removes the files once it is done with them."""
    media, params = media_type_params(content_type)
    if media != "multipart/related" or not params.get("boundary"):
        raise MultipartError("Content-Type must be multipart/related with a boundary")
    reader = _Reader(stream, max_bytes=max_bytes)
    parts: list[SpooledPart] = []
    try:
        _parse(reader, boundary=params["boundary"].encode("latin-1"), folder=Path(folder), parts=parts)
    except BaseException:
        for part in parts:
            part.path.unlink(missing_ok=True)
        raise
    return parts


class _Reader:
    """A buffer over the stream: bounded by what the parser keeps, counted against the body limit."""

    def __init__(self, stream, *, max_bytes: int) -> None:
        self.stream = stream
        self.max_bytes = max_bytes
        self.total = 0
        self.buffer = bytearray()
        self.ended = False

    def fill(self) -> bool:
        """Read one more block; False at the end of the body."""
        if self.ended:
            return False
        block = self.stream.read(BLOCK)
        if not block:
            self.ended = True
            return False
        self.total += len(block)
        if self.total > self.max_bytes:
            raise BodyTooLarge("The request is larger than the platform accepts.")
        self.buffer += block
        return True

    def until(self, marker: bytes, *, limit: int, what: str) -> bytes:
        """The bytes before `marker` (consumed with it), found within `limit` bytes."""
        searched = 0
        while (found := self.buffer.find(marker, max(0, searched - len(marker)))) < 0:
            searched = len(self.buffer)
            if searched > limit:
                raise MultipartError(f"{what} is too long")
            if not self.fill():
                raise MultipartError(f"the body ended in {what}")
        head = bytes(self.buffer[:found])
        del self.buffer[: found + len(marker)]
        return head

    def peek(self, count: int) -> bytes:
        while len(self.buffer) < count and self.fill():
            pass
        return bytes(self.buffer[:count])


def _parse(reader: _Reader, *, boundary: bytes, folder: Path, parts: list[SpooledPart]) -> None:
    delimiter = b"\r\n--" + boundary
    # The preamble (usually empty): the first delimiter may also open the body without a CRLF before it.
    reader.buffer += b"\r\n"
    reader.until(delimiter, limit=MAX_HEADER_BYTES, what="the preamble")
    while True:
        if reader.peek(2) == b"--":
            return  # the closing delimiter; the epilogue is ignored (and not read)
        reader.until(b"\r\n", limit=256, what="a boundary line")  # transport padding
        if reader.peek(2) == b"\r\n":  # a part without headers
            del reader.buffer[:2]
            header_block = b""
        else:
            header_block = reader.until(b"\r\n\r\n", limit=MAX_HEADER_BYTES, what="a part's headers")
        headers = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(header_block + b"\r\n\r\n")
        encoding = str(headers.get("Content-Transfer-Encoding", "binary")).strip().lower()
        if encoding not in ("binary", "8bit", "7bit", "base64"):
            raise MultipartError(f"Content-Transfer-Encoding {encoding} is not supported (binary is)")
        parts.append(_spool_part(reader, delimiter, folder=folder, headers=headers, base64=encoding == "base64"))


def _spool_part(reader: _Reader, delimiter: bytes, *, folder: Path, headers, base64: bool) -> SpooledPart:
    fd, name = tempfile.mkstemp(dir=folder, prefix="stow-")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    carry = b""
    try:
        with os.fdopen(fd, "wb") as out:

            def write(data: bytes) -> None:
                nonlocal size, carry
                if base64:
                    data = carry + b"".join(data.split())
                    whole = len(data) // 4 * 4
                    data, carry = binascii.a2b_base64(data[:whole]), data[whole:]
                out.write(data)
                digest.update(data)
                size += len(data)

            while (found := reader.buffer.find(delimiter)) < 0:
                # Everything but a possible start of the delimiter can go to the file now.
                safe = max(0, len(reader.buffer) - len(delimiter) + 1)
                write(bytes(reader.buffer[:safe]))
                del reader.buffer[:safe]
                if not reader.fill():
                    raise MultipartError("the body ended before the part's closing boundary")
            write(bytes(reader.buffer[:found]))
            del reader.buffer[: found + len(delimiter)]
            if carry:
                raise MultipartError("a base64 part's content is cut short")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SpooledPart(content_type=headers.get_content_type(), path=path, size=size, sha256=digest.hexdigest())


def write_related(parts: list[Part], *, root_type: str) -> tuple[bytes, str]:
    """(body, Content-Type header) of a multipart/related answer."""
    boundary = uuid.uuid4().hex
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {part.content_type}\r\n\r\n".encode(), part.data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="{root_type}"; boundary={boundary}'
