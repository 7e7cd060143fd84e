"""The STOW-RS body parser (cases.dicom.dicomweb.multipart.related_parts_spool): parts go to files as they arrive,
whatever the blocks the body comes in, with a bounded buffer; bad bodies are refused with a reason, leaving nothing."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tracemalloc

import pytest

from cases.dicom.dicomweb.multipart import BodyTooLarge, MultipartError, related_parts_spool

BOUNDARY = "mammo-stow-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def body(*parts: bytes, preamble: bytes = b"", headers: bytes = b"Content-Type: application/dicom\r\n") -> bytes:
    chunks = [preamble]
    for part in parts:
        chunks += [f"--{BOUNDARY}\r\n".encode(), headers, b"\r\n", part, b"\r\n"]
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


class Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes per read, as a slow network would."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    def read(self, size: int = -1) -> bytes:
        size = self.step if size < 0 else min(size, self.step)
        chunk = self.data[self.at : self.at + size]
        self.at += len(chunk)
        return chunk


def parse(data: bytes, folder, *, step: int = 1 << 20, max_bytes: int = 1 << 30, content_type: str = CONTENT_TYPE):
    return related_parts_spool(
        content_type=content_type, stream=Trickle(data, step), folder=folder, max_bytes=max_bytes
    )


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_it_spools_each_part_to_a_file_whatever_the_blocks_it_arrives_in(tmp_path, step):
    # Contents that look like pieces of the boundary must not cut a part short.
    contents = [b"DICM" + os.urandom(300), f"\r\n--{BOUNDARY[:-1]}".encode() + b"x" * 50, b"", b"\r\n--"]
    parts = parse(body(*contents, preamble=b"ignored preamble\r\n"), tmp_path, step=step)
    assert [p.path.read_bytes() for p in parts] == contents
    assert [p.sha256 for p in parts] == [hashlib.sha256(c).hexdigest() for c in contents]
    assert [p.size for p in parts] == [len(c) for c in contents]
    assert {p.content_type for p in parts} == {"application/dicom"}


def test_a_base64_part_is_decoded_on_the_way(tmp_path):
    content = os.urandom(1000)
    encoded = base64.encodebytes(content)  # with line breaks, as mail writes it
    headers = b"Content-Type: application/dicom\r\nContent-Transfer-Encoding: base64\r\n"
    (part,) = parse(body(encoded, headers=headers), tmp_path, step=13)
    assert part.path.read_bytes() == content


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (body(b"abc")[:-10], "ended before the part's closing boundary"),
        (b"no boundary anywhere" * 10, "the body ended in the preamble"),
        (body(b"abc", headers=b"Content-Type: application/dicom\r\nContent-Transfer-Encoding: x-uuencode\r\n"),
         "x-uuencode is not supported"),
    ],
)  # fmt: skip
def test_a_bad_body_is_refused_with_its_reason_and_leaves_no_file(tmp_path, data, reason):
    with pytest.raises(MultipartError, match=reason):
        parse(data, tmp_path, step=5)
    assert list(tmp_path.iterdir()) == []


def test_a_body_over_the_limit_is_refused_as_too_large(tmp_path):
    with pytest.raises(BodyTooLarge):
        parse(body(b"x" * 5000, b"y" * 5000), tmp_path, step=1000, max_bytes=8000)
    assert list(tmp_path.iterdir()) == []


def test_only_multipart_related_with_a_boundary_is_parsed(tmp_path):
    with pytest.raises(MultipartError, match="multipart/related with a boundary"):
        parse(body(b"x"), tmp_path, content_type='multipart/related; type="application/dicom"')


def test_a_large_body_costs_a_block_of_memory_not_its_size(tmp_path):
    content = os.urandom(32 * 1024 * 1024)
    data = body(content, content)
    tracemalloc.start()
    try:
        parts = parse(data, tmp_path, step=256 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [p.size for p in parts] == [len(content)] * 2
    assert peak < 2 * 1024 * 1024, f"{peak / 1e6:.1f} MB allocated while parsing a {len(data) / 1e6:.0f} MB body"
