"""The working image: a mammogram as ingestion decoded it, at the model's working resolution, kept as 16-bit
greyscale so the analysis never decodes the original a second time (and needs no DICOM codec at all).

Stored as a NumPy .npy of uint16 (read back with allow_pickle=False): 65,535 levels keep the 12 to 16 bits of a
mammogram, and loading it costs a few milliseconds where a 16-bit RLE or JPEG 2000 decode costs a hundred.
"""

from __future__ import annotations

import io

import numpy as np

LEVELS = 65535


def working_image_bytes(pixels: np.ndarray) -> bytes:
    """float32 [0, 1] pixels -> .npy bytes of uint16."""
    quantised = np.rint(np.clip(pixels, 0.0, 1.0) * LEVELS).astype(np.uint16)
    out = io.BytesIO()
    np.save(out, quantised, allow_pickle=False)
    return out.getvalue()


def working_image_pixels(data: bytes) -> np.ndarray:
    """.npy bytes -> float32 [0, 1] pixels, as decoding gave them (to 1/65,535)."""
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.dtype != np.uint16 or array.ndim != 2:
        raise ValueError(f"Not a working image: {array.dtype} {array.shape}")
    return np.multiply(array, np.float32(1.0 / LEVELS), dtype=np.float32)  # one pass, no uint16 -> float copy
