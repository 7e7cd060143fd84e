"""The one module that turns uploaded bytes (DICOM, PNG, JPEG) into a display-ready greyscale image.

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
from dataclasses import dataclass, field
from datetime import date
from io import BytesIO
from pathlib import PurePosixPath
from typing import Any, TypeVar

import cv2
import numpy as np
import pydicom
from PIL import Image, ImageOps
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.pixels.processing import apply_voi
from pydicom.uid import UID, RLELossless

from imaging.dicom_tags import (
    codestream_size,
    describe_object,
    descriptive_fields,
    ensure_transfer_syntax,
    int_value,
    looks_like_bare_dicom,
    planned_voi,
    text,
)
from imaging.limits import DEFAULT_LIMITS, DecodeLimits

T = TypeVar("T")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
FORMAT_NAMES = {"dicom": "DICOM", "png": "PNG", "jpeg": "JPEG"}
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
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B"}
# Modes that may still hold a greyscale picture; decided from the pixels in decode_image().
MAYBE_COLOUR_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr"}
# A pixel counts as coloured when its channels spread by more than this (of 255); JPEG chroma rounding on
# a grey picture stays far below it. More than COLOUR_FRACTION of such pixels means a colour image; a few
# coloured annotation marks on a grey mammogram do not.
COLOUR_SPREAD = 24
COLOUR_FRACTION = 0.01
# Never turned into ImageRejected: they are about the process, not the file.
NOT_INPUT_ERRORS = (KeyboardInterrupt, SystemExit, GeneratorExit)
PIXEL_DATA_TAG_BYTES = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian


class ImageRejected(Exception):  # noqa: N818 - the platform-wide name
    """An upload that cannot be used, with a short code and a sentence for the user."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class ImageMetadata:
    source_format: str  # 'dicom' | 'png' | 'jpeg'
    rows: int
    columns: int
    bits_stored: int
    photometric_interpretation: str = "MONOCHROME2"
    laterality: str = ""
    view: str = ""
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    transfer_syntax_uid: str = ""
    modality: str = ""
    manufacturer: str = ""
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: date | None = None
    patient_sex: str = ""
    study_date: date | None = None
    study_description: str = ""
    accession_number: str = ""
    pixel_spacing_mm: tuple[float, float] | None = None
    window_applied: str = "none"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types (dates as ISO strings), e.g. for a JSONField."""
        data = dict(self.__dict__)
        for key in ("patient_birth_date", "study_date"):
            data[key] = data[key].isoformat() if data[key] else None
        data["pixel_spacing_mm"] = list(self.pixel_spacing_mm) if self.pixel_spacing_mm else None
        return data


@dataclass
class DecodedImage:
    pixels: np.ndarray  # 2-D float32 in [0, 1], 1 = brightest as displayed
    metadata: ImageMetadata


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
    return _at_boundary(lambda: _open(filename, data, limits).metadata)


def decode_image(
    *, filename: str, data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, max_side: int | None = None
) -> DecodedImage:
    """read_metadata() plus the pixel decode, from one parse of the file.

    max_side: when given, an image whose longer side exceeds it is reduced (area averaging) right after the
    decode, on the stored integers, before any LUT arithmetic: a 4,600 x 2,800 mammogram then costs a fraction
    of the float work downstream. metadata.rows/columns stay those of the original.
    """
    return _at_boundary(lambda: _open(filename, data, limits).decode(max_side=max_side))


def _reduce(array: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink by the smallest whole factor that brings the longer side to max_side or below.

    A whole factor lets OpenCV's area averaging take its fast path (about 5x faster on a 4,600 x 2,800 image
    than an arbitrary scale); the at most factor - 1 edge rows/columns it drops are background.
    """
    rows, columns = array.shape
    if not max_side or max(rows, columns) <= max_side:
        return array
    factor = -(-max(rows, columns) // max_side)
    if array.dtype not in (np.uint8, np.uint16, np.int16, np.float32):
        array = array.astype(np.float32)
    trimmed = np.ascontiguousarray(array[: rows - rows % factor, : columns - columns % factor])
    size = (trimmed.shape[1] // factor, trimmed.shape[0] // factor)
    return cv2.resize(trimmed, size, interpolation=cv2.INTER_AREA)


def _at_boundary(action: Callable[[], T]) -> T:
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


def _open(filename: str, data: bytes, limits: DecodeLimits) -> _DicomSource | _RasterSource:
    if not data:
        raise ImageRejected("empty_file", "The file is empty.")
    if len(data) > limits.max_file_bytes:
        raise ImageRejected(
            "file_too_large",
            f"The file is larger than the {_size_text(limits.max_file_bytes)} upload limit.",
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
        return _DicomSource(data, limits)
    return _RasterSource(data, fmt, limits)


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


def _size_text(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{size / 2**10:.0f} KB"


def _check_pixel_budget(rows: int, columns: int, limits: DecodeLimits) -> None:
    if rows * columns > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image is {columns} x {rows} pixels, more than the {limits.max_pixels:,} pixels accepted.",
        )


# --- DICOM ----------------------------------------------------------------------------------------------


class _DicomSource:
    """One parsed DICOM file, checked from its header at construction."""

    def __init__(self, data: bytes, limits: DecodeLimits) -> None:
        self.ds = _parse_dicom(data)
        self.rows, self.columns, self.bits_stored = _check_dicom_header(self.ds, data, limits)
        self.metadata = ImageMetadata(
            source_format="dicom",
            rows=self.rows,
            columns=self.columns,
            bits_stored=self.bits_stored,
            photometric_interpretation=text(self.ds, "PhotometricInterpretation"),
            window_applied=planned_voi(self.ds),
            **descriptive_fields(self.ds),
        )

    def decode(self, max_side: int | None = None) -> DecodedImage:
        stored, decoder_notes = _decode_stored_values(self.ds)
        if stored.shape != (self.rows, self.columns):
            raise ImageRejected("corrupt_pixel_data", "The decoded image does not match the size in its header.")
        pixels, window_applied = _to_display(_reduce(stored, max_side), self.ds)
        self.metadata.window_applied = window_applied
        self.metadata.extra.update(decoder_notes)
        return DecodedImage(pixels=pixels, metadata=self.metadata)


def _parse_dicom(data: bytes) -> Dataset:
    has_preamble = data[128:132] == b"DICM"
    try:
        # force only for preamble-less files: with a preamble pydicom validates the header properly.
        ds = pydicom.dcmread(BytesIO(data), force=not has_preamble)
    except Exception as exc:
        raise ImageRejected("not_dicom", "This file looks like DICOM but its header cannot be read.") from exc
    ensure_transfer_syntax(ds)
    return ds


def _check_dicom_header(ds: Dataset, data: bytes, limits: DecodeLimits) -> tuple[int, int, int]:
    """Reject from the header alone; returns (rows, columns, bits stored)."""
    if "PixelData" not in ds:
        raise _no_pixel_data(ds, data)
    if (frames := int_value(ds, "NumberOfFrames", 1)) > 1:
        raise ImageRejected(
            "multi_frame",
            f"This DICOM file holds {frames} frames; multi-frame DICOM (for example tomosynthesis) is not supported.",
        )
    photometric = text(ds, "PhotometricInterpretation").upper()
    if int_value(ds, "SamplesPerPixel", 1) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2", ""):
        raise ImageRejected(
            "colour", f"This DICOM image is in colour ({photometric or 'several samples per pixel'}), not a mammogram."
        )
    if not photometric:  # required by the decoders; a one-sample image without it is read as greyscale
        ds.PhotometricInterpretation = "MONOCHROME2"
    rows, columns = int_value(ds, "Rows", 0), int_value(ds, "Columns", 0)
    if rows < 1 or columns < 1:
        raise ImageRejected("corrupt_pixel_data", "This DICOM file does not state a valid image size.")
    _check_pixel_budget(rows, columns, limits)
    bits_stored, bits_allocated = int_value(ds, "BitsStored", 0), int_value(ds, "BitsAllocated", 0)
    if not 1 <= bits_stored <= 16 or bits_allocated < bits_stored:
        raise ImageRejected(
            "bad_bit_depth", f"This DICOM image stores {bits_stored} bits per pixel; 1 to 16 bits are supported."
        )
    transfer_syntax = UID(ds.file_meta.TransferSyntaxUID)
    _check_transfer_syntax(transfer_syntax)
    if transfer_syntax.is_encapsulated and transfer_syntax != RLELossless:  # RLE's size comes from the header
        _check_codestream_size(ds, rows, columns, limits)
    return rows, columns, bits_stored


def _no_pixel_data(ds: Dataset, data: bytes) -> ImageRejected:
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        return ImageRejected("unsupported_format", "This DICOM file holds floating-point data, not a mammogram.")
    # pydicom drops a cut-off encapsulated Pixel Data element while reading; an image header (or the
    # element's tag in the bytes) tells a truncated image apart from a report that never had pixels.
    if "Rows" in ds or PIXEL_DATA_TAG_BYTES in data:
        return ImageRejected(
            "corrupt_pixel_data", "The pixel data of this DICOM image is missing or cut off; the file may be truncated."
        )
    return ImageRejected("no_pixel_data", f"This DICOM file has no pixel data{describe_object(ds)}.")


def _check_transfer_syntax(transfer_syntax: UID) -> None:
    try:
        available = get_decoder(transfer_syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        name = transfer_syntax.name
        name = f"the unknown transfer syntax {transfer_syntax}" if name == str(transfer_syntax) else name
        raise ImageRejected(
            "unsupported_transfer_syntax", f"This DICOM file is encoded with {name}, which cannot be decoded here."
        )


def _check_codestream_size(ds: Dataset, rows: int, columns: int, limits: DecodeLimits) -> None:
    """The JPEG/JPEG-LS/JPEG 2000 decoders allocate what the codestream says, not what Rows/Columns say:
    compare before decoding, so a small header cannot smuggle in a decompression bomb."""
    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    except Exception as exc:
        raise ImageRejected("corrupt_pixel_data", "The compressed pixel data of this DICOM file is damaged.") from exc
    size = codestream_size(frame)
    if size is None or size == (rows, columns) or 0 in size:  # RLE has no size; JPEG may defer rows (DNL)
        return
    _check_pixel_budget(size[0], size[1], limits)
    raise ImageRejected(
        "corrupt_pixel_data",
        f"The compressed image is {size[1]} x {size[0]} pixels but the DICOM header says {columns} x {rows}.",
    )


def _decode_stored_values(ds: Dataset) -> tuple[np.ndarray, dict[str, str]]:
    """Stored values of frame 0 and how they were decoded. pylibjpeg goes first on purpose: on a
    CBIS-DDSM-sized RLE image it is about 7x faster than pydicom's own decoder, which pydicom itself would
    try first. The other plugins are the fallback for files pylibjpeg rejects; when one is used, the
    pylibjpeg error is kept in the metadata, since a lenient fallback may be hiding damaged data."""
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
    try:
        if decoder.is_native:
            return decoder.as_array(ds, index=0)[0], {"pixel_decoder": "native"}
        first_error: BaseException | None = None
        for plugin in sorted(decoder.available_plugins, key=lambda name: name != "pylibjpeg"):
            try:
                stored = decoder.as_array(ds, index=0, decoding_plugin=plugin)[0]
                notes = {"pixel_decoder": plugin}
                if first_error is not None:
                    notes["pixel_decoder_fallback_reason"] = f"{type(first_error).__name__}: {first_error}"[:300]
                return stored, notes
            except NOT_INPUT_ERRORS:
                raise
            except BaseException as exc:  # incl. PanicException from Rust; try the next plugin
                first_error = first_error or exc
        raise first_error or RuntimeError("no decoding plugin available")
    except (MemoryError, *NOT_INPUT_ERRORS):
        raise
    except BaseException as exc:
        raise ImageRejected(
            "corrupt_pixel_data", "The pixel data of this DICOM image is damaged or truncated and cannot be decoded."
        ) from exc


def _to_display(stored: np.ndarray, ds: Dataset) -> tuple[np.ndarray, str]:
    """Modality LUT, then VOI LUT / window / min..max, then MONOCHROME1 inversion -> float32 [0, 1]."""
    values = apply_modality_lut(stored, ds)
    planned = planned_voi(ds)
    scaled: np.ndarray | None = None
    try:
        if planned == "VOI LUT":
            scaled = _apply_voi_lut_sequence(values, ds)
        elif planned != "none":
            scaled = _apply_window(values, ds)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, NotImplementedError, ZeroDivisionError):
        scaled = None  # an invalid VOI in the header: show the data range rather than reject the image
    applied = planned if scaled is not None else "none"
    if scaled is None:
        scaled = _min_max(values)
    if text(ds, "PhotometricInterpretation").upper() == "MONOCHROME1":
        scaled = 1.0 - scaled  # MONOCHROME1: low values are white; the model must not see a negative
    pixels = scaled.astype(np.float32, copy=False)
    if values.dtype.kind == "f":  # only float inputs (rescaled or LUT output) can carry NaN
        pixels = np.nan_to_num(pixels, copy=False, nan=0.0)
    return np.clip(pixels, 0.0, 1.0, out=pixels), applied


def _apply_voi_lut_sequence(values: np.ndarray, ds: Dataset) -> np.ndarray:
    # Normalise by the LUT's own bit range (2**n - 1 for its largest entry): this equals the descriptor's
    # depth for a correct LUT and survives the known files whose descriptor says 16 bits for 12-bit data.
    descriptor = ds.VOILUTSequence[0].LUTDescriptor
    entries, first = int(descriptor[0]) or 65536, int(descriptor[1])
    lut = apply_voi(np.arange(first, first + entries), ds, 0)  # the LUT itself, decoded by pydicom
    top = (1 << max(1, int(lut.max()).bit_length())) - 1
    return apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float32) / top


def _apply_window(values: np.ndarray, ds: Dataset) -> np.ndarray:
    windowed = apply_voi_lut(values, ds, index=0, prefer_lut=False)
    # The window's output range depends on bits, sign and rescale (PS3.3 C.11.2.1.2); read it back from
    # pydicom by windowing two extreme inputs instead of re-deriving its rules here.
    with np.errstate(over="ignore"):
        low, high = apply_voi_lut(np.array([-1e30, 1e30]), ds, index=0, prefer_lut=False)
    if not np.isfinite([low, high]).all() or low == high:
        raise ValueError("window output range is empty")
    return ((windowed - low) / (high - low)).astype(np.float32)


def _min_max(values: np.ndarray) -> np.ndarray:
    # The image's actual range, not the nominal 2**BitsStored: mammograms rarely fill it. Exact min/max
    # rather than percentiles, because the brightest few pixels are exactly the calcifications.
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0 or finite.min() == finite.max():
        return np.zeros(values.shape, dtype=np.float32)
    low, high = float(finite.min()), float(finite.max())
    return (values.astype(np.float32) - np.float32(low)) / np.float32(high - low)


# --- PNG and JPEG ---------------------------------------------------------------------------------------


class _RasterSource:
    """A PNG or JPEG opened lazily by Pillow: the constructor reads the header only."""

    def __init__(self, data: bytes, fmt: str, limits: DecodeLimits) -> None:
        self.fmt = fmt
        label = FORMAT_NAMES[fmt]
        try:
            # formats= keeps Pillow from trying other parsers on content we sniffed as PNG/JPEG.
            self.image = Image.open(BytesIO(data), formats=[label])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected("too_many_pixels", "The image has far too many pixels to be decoded.") from exc
        except Exception as exc:
            raise ImageRejected("corrupt_pixel_data", f"This {label} file is damaged and cannot be opened.") from exc
        columns, rows = self.image.size
        _check_pixel_budget(rows, columns, limits)
        mode = self.image.mode
        if mode not in GREY_MODES | MAYBE_COLOUR_MODES:
            raise ImageRejected("unsupported_format", f"This {label} image uses the unsupported pixel format {mode}.")
        self.metadata = ImageMetadata(
            source_format=fmt,
            rows=rows,
            columns=columns,
            bits_stored=16 if mode.startswith("I") else 8,
            photometric_interpretation="MONOCHROME2" if mode in GREY_MODES else "RGB",
            extra={"pil_mode": mode},
        )

    def decode(self, max_side: int | None = None) -> DecodedImage:
        label = FORMAT_NAMES[self.fmt]
        try:
            self.image.load()
            # Viewers honour the EXIF orientation; the chest-wall side must match what the user saw.
            image = ImageOps.exif_transpose(self.image)
            pixels = self._greyscale(image)
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected("too_many_pixels", "The image has far too many pixels to be decoded.") from exc
        except MemoryError:
            raise
        except Exception as exc:
            raise ImageRejected("corrupt_pixel_data", f"This {label} file is damaged or truncated.") from exc
        self.metadata.photometric_interpretation = "MONOCHROME2"
        pixels = _reduce(np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False), max_side)
        return DecodedImage(pixels=pixels, metadata=self.metadata)

    def _greyscale(self, image: Image.Image) -> np.ndarray:
        if image.mode.startswith("I"):
            return _scale_16bit(np.asarray(image))
        if image.mode in GREY_MODES:
            grey = image.getchannel(0) if image.mode in ("LA", "La") else image.convert("L")
            return np.asarray(grey, dtype=np.float32) / 255.0
        rgb = np.asarray(image.convert("RGB"))
        spread = rgb.max(axis=2) - rgb.min(axis=2)
        if np.count_nonzero(spread > COLOUR_SPREAD) > COLOUR_FRACTION * spread.size:
            raise ImageRejected("colour", f"This {FORMAT_NAMES[self.fmt]} image is in colour, not a mammogram.")
        self.metadata.extra["converted_from"] = image.mode
        return rgb.mean(axis=2, dtype=np.float32) / 255.0


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """16-bit PNG: divide by 2**n - 1 for the bit length n of the largest value (at least 8), so a 12-bit
    image stored in a 16-bit PNG fills [0, 1] like its DICOM would, while a full-range one uses 65535."""
    values = np.clip(values, 0, 65535)
    top = (1 << max(8, int(values.max()).bit_length())) - 1
    return values.astype(np.float32) / np.float32(top)
