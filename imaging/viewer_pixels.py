"""The reading viewer's pixels: an image's stored values at full resolution and original bit depth, packed so that
the browser undoes the compression natively. (Not imaging.working_image, the model's reduced copy.)

Format "MVP1", little-endian, the whole of it gzip-compressed (served with Content-Encoding: gzip, so the browser
inflates it in native code before JavaScript sees it):

    header, 24 bytes: magic b"MVP1", uint32 rows, uint32 columns, uint8 bytes per sample (1 or 2),
                      uint8 signed (0 or 1), uint16 reserved (0), int32 smallest value, int32 largest value
    body:             every row horizontally differenced (each sample minus its left neighbour, modulo 2**bits; the
                      first sample of a row as it is: TIFF's horizontal predictor), then, for 2-byte samples, the
                      high bytes of all samples followed by all the low bytes (byte planes).

Why not the DICOM itself: the platform already decodes every transfer syntax it accepts (RLE, JPEG, JPEG-LS,
JPEG 2000, JPEG Lossless) in one place, imaging.decoding, with pylibjpeg; decoding them again in the browser would mean
vendoring a second set of codecs (WebAssembly in web workers) with failure modes of their own, and PNG/JPEG uploads
would still need another path. Measured on a 4,600 x 2,800 16-bit mammogram (tests/test_viewer_pixels.py prints
it): 25.8 MB of pixels; as RLE DICOM and as MVP1 at gzip level 1, 17.2 and 10.7 MB for a smooth synthetic
breast, 26.9 and 18.6 MB for a noisy one (raw + gzip: 18 to 21 MB); packing takes 0.3 to 1 s on this machine's kind
of core. The browser's side is a running sum per row (viewer/mvp.js), in a worker.

Django-free, like the rest of imaging/.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import ImageOps
from pydicom.pixels import apply_modality_lut

from imaging.decoding import DEFAULT_LIMITS, DecodeLimits, ImageRejected, _at_boundary, _open
from imaging.dicom_decoding import DicomSource, _decode_stored_values
from imaging.dicom_tags import text
from imaging.raster_decoding import RasterSource

MAGIC = b"MVP1"
HEADER = struct.Struct("<4sIIBBHii")
CONTENT_TYPE = "application/vnd.mammo-viewer-pixels"


@dataclass
class StoredValues:
    """Pixel values as stored (before the Modality LUT), with what a viewer needs to show them correctly."""

    values: np.ndarray  # 2-D uint8, uint16 or int16
    photometric_interpretation: str = "MONOCHROME2"
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)


def stored_values(*, filename: str, data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> StoredValues:
    """The full-resolution stored values of an accepted upload (DICOM, PNG or JPEG). Bad input raises ImageRejected,
    as everywhere in imaging.decoding."""
    return _at_boundary(lambda: _stored_values(_open(filename, data, limits)))


def _stored_values(source: DicomSource | RasterSource) -> StoredValues:
    if isinstance(source, DicomSource):
        return _dicom_values(source)
    return StoredValues(values=_raster_values(source))


def _dicom_values(source: DicomSource) -> StoredValues:
    ds = source.ds
    values, notes = _decode_stored_values(ds)
    if values.shape != (source.rows, source.columns):
        raise ImageRejected("corrupt_pixel_data", "The decoded image does not match the size in its header.")
    slope, intercept = 1.0, 0.0
    if "ModalityLUTSequence" in ds:
        # A non-linear Modality LUT (rare in mammography) cannot travel as slope/intercept: apply it here; its output
        # is an integer range of at most 16 bits (PS3.3 C.11.1.1.1).
        values = apply_modality_lut(values, ds)
        notes["modality_lut"] = "applied on the server"
    else:
        slope = _number(ds, "RescaleSlope", 1.0) or 1.0
        intercept = _number(ds, "RescaleIntercept", 0.0)
    return StoredValues(
        values=_as_16_bit(values),
        photometric_interpretation=text(ds, "PhotometricInterpretation").upper() or "MONOCHROME2",
        rescale_slope=slope,
        rescale_intercept=intercept,
        notes=notes,
    )


def _raster_values(source: RasterSource) -> np.ndarray:
    """PNG/JPEG as integers: 16-bit PNGs keep their 16 bits, everything else is 8-bit grey (the same picture the
    upload's preview was made from: EXIF orientation applied, grey RGB averaged)."""
    source.image.load()
    image = ImageOps.exif_transpose(source.image)
    if image.mode.startswith("I"):
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    grey = source._greyscale(image, None)  # float in [0, 1] from 8-bit values; rejects real colour like the upload did
    return np.rint(grey * 255.0).astype(np.uint8)


def _as_16_bit(values: np.ndarray) -> np.ndarray:
    if values.dtype in (np.uint8, np.uint16, np.int16):
        return values
    if values.dtype == np.int8:
        return values.astype(np.int16)
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low >= 0 and high <= 65535:
        return values.astype(np.uint16)
    if low >= -32768 and high <= 32767:
        return values.astype(np.int16)
    raise ImageRejected("bad_bit_depth", "The pixel values of this image do not fit in 16 bits.")


def _number(ds, keyword: str, default: float) -> float:
    try:
        value = ds.get(keyword)
        return default if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return default


def viewer_pixels_pack(values: np.ndarray, *, level: int = 1) -> bytes:
    """MVP1 bytes, gzip-compressed. level 1: on a real-size mammogram level 6 saves 12 % more bytes for four times
    the time (1.5 s instead of 0.35 s on this machine's kind of core)."""
    if values.ndim != 2 or values.dtype not in (np.uint8, np.uint16, np.int16):
        raise ValueError(f"expected a 2-D uint8, uint16 or int16 array, not {values.ndim}-D {values.dtype}")
    rows, columns = values.shape
    width = values.dtype.itemsize
    unsigned = values.view(np.uint8 if width == 1 else np.uint16)
    differences = unsigned.copy()
    differences[:, 1:] = unsigned[:, 1:] - unsigned[:, :-1]  # wraps modulo 2**bits: what the browser's sum undoes
    if width == 2:
        little = differences.astype("<u2", copy=False).view(np.uint8).reshape(rows, columns, 2)
        body = np.ascontiguousarray(little[..., 1]).tobytes() + np.ascontiguousarray(little[..., 0]).tobytes()
    else:
        body = differences.tobytes()
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    header = HEADER.pack(MAGIC, rows, columns, width, int(values.dtype == np.int16), 0, low, high)
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: a gzip member, as Content-Encoding expects
    return compressor.compress(header) + compressor.compress(body) + compressor.flush()


def viewer_pixels_unpack(data: bytes) -> np.ndarray:
    """The inverse of viewer_pixels_pack (the viewer does the same in mammo_platform/static/viewer/mvp.js)."""
    raw = gzip.decompress(data)
    magic, rows, columns, width, signed, _, _, _ = HEADER.unpack_from(raw)
    if magic != MAGIC or width not in (1, 2):
        raise ValueError("not MVP1 viewer pixels")
    body = np.frombuffer(raw, dtype=np.uint8, offset=HEADER.size)
    if body.size != rows * columns * width:
        raise ValueError("MVP1 body size does not match its header")
    if width == 2:
        high, low = body[: rows * columns], body[rows * columns :]
        differences = (high.astype(np.uint16) << 8) | low
        values = np.cumsum(differences.reshape(rows, columns), axis=1, dtype=np.uint16)
        return values.view(np.int16) if signed else values
    return np.cumsum(body.reshape(rows, columns), axis=1, dtype=np.uint8)
