"""Heatmap files: a greyscale heatmap (the data) and a coloured, transparent overlay (for display over the
preview, whose opacity the result page controls)."""

from __future__ import annotations

import cv2
import numpy as np

from imaging.previews import png_bytes


def heatmap_pngs(heatmap: np.ndarray) -> tuple[bytes, bytes]:
    """heatmap: float in [0, 1] at preview size. Returns (greyscale PNG, RGBA overlay PNG)."""
    grey = np.clip(heatmap * 255.0 + 0.5, 0, 255).astype(np.uint8)
    colour = cv2.applyColorMap(grey, cv2.COLORMAP_JET)  # BGR
    # Transparent where the model did not look, so the anatomy stays visible under the overlay.
    alpha = np.clip(heatmap * 1.6, 0, 1) * 255
    overlay = np.dstack([colour, alpha.astype(np.uint8)])
    return png_bytes(grey), png_bytes(overlay)


def heatmap_peak(heatmap: np.ndarray, *, original_shape: tuple[float, float]) -> dict:
    """Where a heatmap drawn over an image (at any scale) peaks, in the original image's pixel coordinates (row and
    column of the pixel under the centre of the peak cell, as marks and lesion positions are given), and its value.
    `original_shape` is the original's (rows, columns) that the heatmap's extent covers."""
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    sy, sx = original_shape[0] / heatmap.shape[0], original_shape[1] / heatmap.shape[1]
    return {"row": (row + 0.5) * sy - 0.5, "column": (col + 0.5) * sx - 0.5, "value": float(heatmap[row, col])}
