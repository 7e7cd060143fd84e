"""The one entry point that turns uploaded bytes (DICOM, PNG, JPEG) into a display-ready greyscale image (the
format readers are imaging.dicom_decoding and imaging.raster_decoding).

read_metadata() validates everything the headers can tell (size, format, pixel budget, colour, frames, bit
depth, transfer syntax) without decoding pixels; decode_image() adds the pixel decode. Bad input only ever
raises ImageRejected, whose `reason` is a sentence for the user and whose __cause__ keeps the original error.

Pixel convention: float32 in [0, 1], 1 = brightest as displayed. DICOM goes stored value -> Modality LUT
(rescale) -> VOI LUT or window (else the image's own min..max) -> MONOCHROME1 inversion, in float, so the
16-bit precision survives until the final scaling. Django-free on purpose: the Celery worker and tests
import it bare.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TypeVar

from imaging.decoded import (  # noqa: F401  (the platform imports these from here)
    FORMAT_NAMES,
    NOT_INPUT_ERRORS,
    DecodedImage,
    ImageMetadata,
    ImageRejected,
    size_text,
)
from imaging.dicom_decoding import DicomSource, dicom_header_source
from imaging.dicom_tags import looks_like_bare_dicom
from imaging.limits import DEFAULT_LIMITS, DecodeLimits
from imaging.raster_decoding import RasterSource
from imaging.stored_values import stored_values_of

T = TypeVar("T")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
EXTENSION_FORMATS = {
    **dict.fromkeys((".dcm", ".dicom", ".dic"), "dicom"),
    ".png": "png",
    **dict.fromkeys((".jpg", ".jpeg", ".jpe", ".jfif"), "jpeg"),
}
# Recognised so the user is told what they uploaded; (code, description).
OTHER_SIGNATURES = (
    (b"%PDF", "not_dicom", "a PDF document"),
    (b"PK\x03\x04", "not_dicom", "a ZIP archive"),
    (b"GIF8", "unsupported_format", "a GIF image"),
    (b"II*\x00", "unsupported_format", "a TIFF image"),
    (b"MM\x00*", "unsupported_format", "a TIFF image"),
    (b"\x00\x00\x00\x0cjP  ", "unsupported_format", "a JPEG 2000 image"),
)


def sniff_format(data: bytes) -> str | None:
    """'dicom' | 'png' | 'jpeg' from magic bytes; None for anything else."""
    if data[128:132] == b"DICM":
        return "dicom"
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    return "dicom" if looks_like_bare_dicom(data) else None


def read_metadata(*, filename: str, data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> ImageMetadata:
    """Validate from the headers only and return the metadata. A PNG/JPEG saved as RGB is only checked
    for real colour by decode_image(), since that needs its pixels."""
    return at_input_boundary(lambda: open_source(filename, data, limits).metadata)


def dicom_header_metadata(*, path, limits: DecodeLimits = DEFAULT_LIMITS) -> ImageMetadata | None:
    """For a DICOM file on disk: its metadata from the header alone, after the refusals a header decides (too many
    pixels, several frames, colour, bit depth), without reading the pixel data into memory. None for other formats
    and for headers that cannot be judged alone (read_metadata on the whole file then decides)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if sniff_format(head) != "dicom":
        return None
    source = dicom_header_source(path, limits)
    return source.metadata if source is not None else None


def decode_image(
    *, filename: str, data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, max_side: int | None = None
) -> DecodedImage:
    """read_metadata() plus the pixel decode, from one parse of the file.

    max_side: when given, an image whose longer side exceeds it is reduced (area averaging) right after the
    decode, on the stored integers, before any LUT arithmetic: a 4,600 x 2,800 mammogram then costs a fraction
    of the float work downstream. metadata.rows/columns stay those of the original.
    """
    return at_input_boundary(lambda: open_source(filename, data, limits).decode(max_side=max_side))


def decode_upload(*, filename: str, data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, max_side: int | None = None):
    """One decode, both results ingestion keeps: the display pixels reduced to max_side (the model's working image
    and the preview come from them) and the full-resolution stored values (the reading viewer's pixels,
    imaging.viewer_pixels). Returns (DecodedImage, StoredValues)."""

    def action():
        source = open_source(filename, data, limits)
        decoded = source.decode(max_side=max_side)
        return decoded, stored_values_of(source)

    return at_input_boundary(action)


def at_input_boundary(action: Callable[[], T]) -> T:
    """Turn every failure on bad input into ImageRejected; the original stays as __cause__ for logs."""
    try:
        return action()
    except (ImageRejected, *NOT_INPUT_ERRORS):
        raise
    except MemoryError as exc:
        raise ImageRejected("too_many_pixels", "This image is too large to decode.") from exc
    except BaseException as exc:  # BaseException: Rust decoders (pylibjpeg-rle) panic with PanicException
        raise ImageRejected(
            "corrupt_pixel_data", "The image could not be decoded; the file may be damaged or truncated."
        ) from exc


# --- Format, size and extension checks shared by all formats ------------------------------------------


def open_source(filename: str, data: bytes, limits: DecodeLimits) -> DicomSource | RasterSource:
    if not data:
        raise ImageRejected("empty_file", "The file is empty.")
    if len(data) > limits.max_file_bytes:
        raise ImageRejected(
            "file_too_large",
            f"The file is larger than the {size_text(limits.max_file_bytes)} upload limit.",
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise _not_an_image(data)
    claimed = EXTENSION_FORMATS.get(PurePosixPath(filename.replace("\\", "/")).suffix.lower())
    if claimed and claimed != fmt:
        raise ImageRejected(
            "extension_mismatch",
            f"The file name says {FORMAT_NAMES[claimed]} but the file content is a {FORMAT_NAMES[fmt]} image.",
        )
    if fmt == "dicom":
        return DicomSource(data, limits)
    return RasterSource(data, fmt, limits)


def _not_an_image(data: bytes) -> ImageRejected:
    for signature, code, description in OTHER_SIGNATURES:
        if data.startswith(signature):
            if code == "unsupported_format":
                return ImageRejected(code, f"This file is {description}; only DICOM, PNG and JPEG images are accepted.")
            return ImageRejected(code, f"This file is not a DICOM, PNG or JPEG image (it is {description}).")
    if _is_text(data[:4096]):
        return ImageRejected("not_dicom", "This file is not a DICOM, PNG or JPEG image (it is a text file).")
    return ImageRejected("not_dicom", "This file is not a DICOM, PNG or JPEG image.")


def _is_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
