"""PNG previews for display: 8-bit, longer side at most `max_side` (settings.PREVIEW_MAX_SIDE on the platform)."""

from __future__ import annotations

import cv2
import numpy as np


def preview_shape(original_shape: tuple[int, int], *, max_side: int) -> tuple[int, int]:
    rows, cols = original_shape
    scale = min(1.0, max_side / max(rows, cols))
    return max(1, round(rows * scale)), max(1, round(cols * scale))


def preview_array(pixels: np.ndarray, *, max_side: int) -> np.ndarray:
    """float [0, 1] pixels -> uint8 preview."""
    rows, cols = preview_shape(pixels.shape, max_side=max_side)
    small = cv2.resize(pixels.astype(np.float32, copy=False), (cols, rows), interpolation=cv2.INTER_AREA)
    return np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed.")
    return encoded.tobytes()
