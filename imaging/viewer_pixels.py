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

import numpy as np

from imaging.decoding import at_input_boundary, open_source
from imaging.limits import DEFAULT_LIMITS, DecodeLimits
from imaging.stored_values import StoredValues, stored_values_of

MAGIC = b"MVP1"
HEADER = struct.Struct("<4sIIBBHii")
CONTENT_TYPE = "application/vnd.mammo-viewer-pixels"


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


def stored_values(*, filename: str, data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> StoredValues:
    """The full-resolution stored values of an accepted upload (DICOM, PNG or JPEG), for an image stored before
    ingestion kept viewer pixels. Bad input raises ImageRejected, as everywhere in imaging.decoding."""
    return at_input_boundary(lambda: stored_values_of(open_source(filename, data, limits)))
