"""Preparing one incoming file: the checks (format, size, pixel budget, that it is a mammogram, that a breast can be
found), the one decode at the model's working resolution, and its stored derivatives (preview, working image, and
the reading viewer's full-resolution pixels).
cases.studies.ingestion then decides which study it joins and writes the rows."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from core import storage
from imaging.decoding import ImageMetadata, ImageRejected, decode_upload, dicom_header_metadata, read_metadata
from imaging.dicom_tags import parse_laterality_view
from imaging.limits import upload_limits
from imaging.mammogram import MADE_FOR, mammogram_check
from imaging.previews import png_bytes, preview_array
from imaging.viewer_pixels import viewer_pixels_pack
from imaging.working_image import working_image_bytes
from inference.serving.preprocessing import WORKING_MAX_SIDE, breast_found

_decode_slots: threading.BoundedSemaphore | None = None
_decode_slots_lock = threading.Lock()


@dataclass(frozen=True)
class IncomingFile:
    """One file as it arrived, already on this host's disk: streamed into the store's incoming folder while hashed
    (cases.studies.uploads for pages and the API, the STOW-RS parser), or in the DICOM listener's spool. Ingestion
    stores it without reading it into memory (a rename or an upload) and removes it, unless it is `borrowed`: the
    spool's file stays where it is until the listener, which owns it, removes it once ingestion has decided."""

    name: str
    path: Path | None  # None when the file was too large to keep
    sha256: str
    size: int
    too_large: bool = False
    borrowed: bool = False

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> IncomingFile:
        """For callers that hold the bytes (tests, the benchmark)."""
        fd, tmp = tempfile.mkstemp(dir=storage.incoming_dir(), prefix="bytes-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return cls(name=name, path=Path(tmp), sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    @classmethod
    def borrowed_file(cls, name: str, path: Path) -> IncomingFile:
        """A file someone else owns (the listener's spool): hashed in blocks, never read whole, never removed."""
        path = Path(path)
        return cls(
            name=name, path=path, sha256=storage.file_sha256(path), size=path.stat().st_size, borrowed=True,
            too_large=path.stat().st_size > settings.MAMMO_MAX_FILE_BYTES,
        )  # fmt: skip

    def discard(self) -> None:
        if self.path is not None and not self.borrowed:
            self.path.unlink(missing_ok=True)


@dataclass
class PreparedFile:
    """A validated file: its metadata and the names of its stored derivatives. The decoded pixels are dropped as
    soon as the preview and the working image are written (a batch of full-size mammograms held at once would
    take gigabytes)."""

    incoming: IncomingFile
    metadata: ImageMetadata
    laterality: str
    view: str
    working_sha256: str
    written: list[str]  # storage names this upload created (removed again if its rows are not written)

    @property
    def sha256(self) -> str:
        return self.incoming.sha256


def _decode_slot() -> threading.BoundedSemaphore:
    """At most MAMMO_DECODE_CONCURRENCY decodes at once per process: a web worker's memory stays bounded however
    many uploads arrive together."""
    global _decode_slots
    with _decode_slots_lock:
        if _decode_slots is None:
            _decode_slots = threading.BoundedSemaphore(settings.MAMMO_DECODE_CONCURRENCY)
        return _decode_slots


def file_prepare(incoming: IncomingFile, *, laterality: str, view: str) -> PreparedFile:
    with _decode_slot():
        # A DICOM that its header rules out (a CT, a tomosynthesis object, too many pixels...) is refused before the
        # file is read into memory: a 200 MB file then costs its header.
        if (header := dicom_header_metadata(path=incoming.path, limits=upload_limits(settings))) is not None:
            mammogram_check(header)
        data = incoming.path.read_bytes()
        # What the headers can tell first: a CT, an SR or a tomosynthesis object is refused before any decode.
        mammogram_check(read_metadata(filename=incoming.name, data=data, limits=upload_limits(settings)))
        # One decode: the display pixels at the model's working resolution (the preview and the working image come
        # from them) and the full-resolution stored values (the reading viewer's pixels).
        decoded, stored = decode_upload(
            filename=incoming.name, data=data, limits=upload_limits(settings), max_side=WORKING_MAX_SIDE
        )
        del data
        meta = decoded.metadata
        if not breast_found(decoded.pixels):
            raise ImageRejected(
                "no_breast",
                "No breast can be found in this image (it is empty or nearly uniform). " + MADE_FOR,
            )
        side, position = meta.laterality, meta.view
        if not side or not position:
            name_side, name_view = parse_laterality_view(incoming.name)
            side = side or laterality or name_side
            position = position or view or name_view
        if side not in ("L", "R"):
            raise ImageRejected(
                "laterality_missing",
                "The breast side is unknown: choose left or right in the form, or name the file like 'L_CC.png'.",
            )
        if not position:
            raise ImageRejected(
                "view_missing", "The view is unknown: choose CC or MLO in the form, or name the file like 'L_CC.png'."
            )
        preview = png_bytes(preview_array(decoded.pixels, max_side=settings.PREVIEW_MAX_SIDE))
        working = working_image_bytes(decoded.pixels)
        del decoded
        # The reading viewer's pixels, now rather than when the first reader opens the exam and would wait for them
        # (a gzip pass over the stored values: well under a second for a 4,600 x 2,800 16-bit mammogram).
        viewer = viewer_pixels_pack(stored.values)
        del stored
    written = []
    for name, content in (
        (storage.preview_name(incoming.sha256), preview),
        (storage.working_name(incoming.sha256), working),
        (storage.viewer_pixels_name(incoming.sha256), viewer),
    ):
        if storage.put(name, content):
            written.append(name)
    return PreparedFile(
        incoming=incoming,
        metadata=meta,
        laterality=side,
        view=position.upper()[:16],
        working_sha256=hashlib.sha256(working).hexdigest(),
        written=written,
    )
