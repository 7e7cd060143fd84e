"""multipart/related bodies (RFC 2387) as PS3.18 uses them: parsing a STOW-RS request, writing a WADO-RS answer."""

from __future__ import annotations

import email.parser
import email.policy
import uuid
from dataclasses import dataclass


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


def parse_related(content_type: str, body: bytes) -> list[Part]:
    media, params = media_type_params(content_type)
    if media != "multipart/related" or "boundary" not in params:
        raise MultipartError("Content-Type must be multipart/related with a boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise MultipartError("The multipart body cannot be read")
    parts = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        parts.append(Part(content_type=part.get_content_type(), data=payload or b""))
    return parts


def write_related(parts: list[Part], *, root_type: str) -> tuple[bytes, str]:
    """(body, Content-Type header) of a multipart/related answer."""
    boundary = uuid.uuid4().hex
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {part.content_type}\r\n\r\n".encode(), part.data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="{root_type}"; boundary={boundary}'
