"""The one preprocessing function, shared by serving (inference.serving.runtime) and training
(inference.training.trainer).

Input: a decoded mammogram (imaging.decoding.DecodedImage.pixels): 2-D float32 in [0, 1], bright = dense tissue,
any size, 16-bit precision kept. Output: the network input (square, 3 channels, values in [0, 255] as Keras'
EfficientNet expects) plus the geometry needed to map a heatmap back onto the original image.

Steps: find the breast (Otsu threshold on a small copy, largest connected region), flip so the chest wall is on
the left (both breasts then look alike to the network), crop to the breast, pad to a square keeping the aspect
ratio, resize. Bump PREPROCESSING_VERSION whenever the output changes: a model records the version it was
trained with, and serving refuses a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PREPROCESSING_VERSION = "1"
# Model pixels are decoded at most this large (longer side): four times the largest input size, so nothing the
# network could see is lost, while a 4,600 x 2,800 mammogram costs a fifth of the work after decoding.
WORKING_MAX_SIDE = 2048
_MASK_SIDE = 512  # breast detection runs on a copy whose longer side is this
_CROP_MARGIN = 0.02  # of the longer side, kept around the breast's bounding box
_MIN_BREAST_FRACTION = 0.02  # below this the mask is not trusted and the whole image is used
HEATMAP_FADE = 0.04  # of the crop's longer side: the width over which a heatmap fades out at the crop's edges
_MIN_CONTRAST = 0.05  # brightest minus darkest pixel (of 1) below which a picture is taken as empty


@dataclass(frozen=True)
class Geometry:
    """Where the network input came from in the original image."""

    original_shape: tuple[int, int]  # rows, columns of the original
    flipped: bool  # mirrored left-right before cropping
    crop: tuple[int, int, int, int]  # top, bottom, left, right in the (flipped) original; bottom/right exclusive
    pad: tuple[int, int]  # rows, columns added before the crop inside the square
    side: int  # square side in original pixels
    input_size: int

    def as_dict(self) -> dict:
        return {
            "original_shape": list(self.original_shape),
            "flipped": self.flipped,
            "crop": list(self.crop),
            "pad": list(self.pad),
            "side": self.side,
            "input_size": self.input_size,
        }


@dataclass(frozen=True)
class Preprocessed:
    tensor: np.ndarray  # (input_size, input_size, 3) float32 in [0, 255]
    geometry: Geometry


def decode_for_model(*, filename: str, data: bytes, limits=None):
    """File bytes -> DecodedImage at working resolution. Serving and training both load images through this."""
    from imaging.decoding import decode_image
    from imaging.limits import DEFAULT_LIMITS

    return decode_image(filename=filename, data=data, limits=limits or DEFAULT_LIMITS, max_side=WORKING_MAX_SIDE)


def breast_found(pixels: np.ndarray) -> bool:
    """Whether preprocessing finds a breast at all: a region standing out from the background and covering at
    least _MIN_BREAST_FRACTION of the picture. An empty (uniform) picture or a speck is not a mammogram, and the
    model must not score it (ingestion refuses it)."""
    if float(pixels.max()) - float(pixels.min()) < _MIN_CONTRAST:
        return False
    mask, _ = breast_mask(pixels)
    return bool(_MIN_BREAST_FRACTION <= mask.mean() < 1.0)


def breast_mask(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """A boolean mask of the breast on a small copy of the image, and the copy's scale (small / original)."""
    rows, cols = pixels.shape
    scale = min(1.0, _MASK_SIDE / max(rows, cols))
    small = cv2.resize(pixels, (max(1, round(cols * scale)), max(1, round(rows * scale))), interpolation=cv2.INTER_AREA)
    small8 = np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)
    small8 = cv2.GaussianBlur(small8, (5, 5), 0)
    _, binary = cv2.threshold(small8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.ones_like(binary, dtype=bool), scale
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest, scale


def _breast_box(pixels: np.ndarray) -> tuple[tuple[int, int, int, int], bool]:
    rows, cols = pixels.shape
    mask, scale = breast_mask(pixels)
    if mask.mean() < _MIN_BREAST_FRACTION:
        return (0, rows, 0, cols), False
    ys, xs = np.nonzero(mask)
    # Chest wall on the right when the breast's mass sits in the right half.
    flip = bool(xs.mean() > mask.shape[1] / 2)
    margin = _CROP_MARGIN * max(rows, cols)
    top = max(0, int(np.floor(ys.min() / scale - margin)))
    bottom = min(rows, int(np.ceil((ys.max() + 1) / scale + margin)))
    left = max(0, int(np.floor(xs.min() / scale - margin)))
    right = min(cols, int(np.ceil((xs.max() + 1) / scale + margin)))
    if flip:
        left, right = cols - right, cols - left
    return (top, bottom, left, right), flip


def preprocess(pixels: np.ndarray, *, input_size: int) -> Preprocessed:
    """Turn a decoded mammogram into the network's input. Deterministic: same pixels, same tensor."""
    if pixels.ndim != 2:
        raise ValueError(f"Expected a 2-D greyscale image, got shape {pixels.shape}.")
    pixels = np.asarray(pixels, dtype=np.float32)
    (top, bottom, left, right), flipped = _breast_box(pixels)
    view = pixels[:, ::-1] if flipped else pixels
    crop = view[top:bottom, left:right]
    height, width = crop.shape
    side = max(height, width)
    # Chest wall stays on the left edge; pad on the far side (right) and centre vertically.
    pad_top = (side - height) // 2
    pad_left = 0
    scale = input_size / side
    out_h, out_w = max(1, round(height * scale)), max(1, round(width * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(crop), (out_w, out_h), interpolation=interpolation)
    canvas = np.zeros((input_size, input_size), dtype=np.float32)
    row0 = min(input_size - out_h, round(pad_top * scale))
    canvas[row0 : row0 + out_h, :out_w] = resized
    tensor = np.repeat((np.clip(canvas, 0.0, 1.0) * 255.0)[:, :, None], 3, axis=2)
    geometry = Geometry(
        original_shape=(pixels.shape[0], pixels.shape[1]),
        flipped=flipped,
        crop=(top, bottom, left, right),
        pad=(pad_top, pad_left),
        side=side,
        input_size=input_size,
    )
    return Preprocessed(tensor=tensor, geometry=geometry)


def heatmap_to_original(cam: np.ndarray, geometry: Geometry, *, out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Map a heatmap over the network input back onto the original image (optionally at a smaller scale).

    Undoes resize, pad, crop and flip in one affine warp. Outside the crop (what the model never saw) the heatmap is
    zero, and it fades there smoothly rather than stopping at an edge.
    """
    rows, cols = geometry.original_shape
    out_rows, out_cols = out_shape or (rows, cols)
    cam = np.asarray(cam, dtype=np.float32)
    # Output pixel centre (x, y) -> original (x * sx, y * sy) -> network input -> cam pixel. Pixel centres at +0.5.
    sx, sy = cols / out_cols, rows / out_rows
    k = (geometry.input_size / geometry.side) * (cam.shape[0] / geometry.input_size)  # original px -> cam px
    top, bottom, left, right = geometry.crop
    pad_top, pad_left = geometry.pad
    # cam_y = k * (y_orig - top + pad_top); y_orig = (y + 0.5) * sy, cam index = cam_y - 0.5
    ay, by = k * sy, k * (0.5 * sy - top + pad_top) - 0.5
    if geometry.flipped:
        # x_flipped = cols - x_orig
        ax, bx = -k * sx, k * (cols - 0.5 * sx - left + pad_left) - 0.5
    else:
        ax, bx = k * sx, k * (0.5 * sx - left + pad_left) - 0.5
    matrix = np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)
    mapped = cv2.warpAffine(
        cam,
        matrix,
        (out_cols, out_rows),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        # Replicate: the cam's outer half-pixel belongs to its edge cells; the crop mask below zeroes the rest.
        borderMode=cv2.BORDER_REPLICATE,
    )
    # The model saw the crop box only. Fade the map to nothing towards the box's edges (over HEATMAP_FADE of the
    # box's longer side) instead of cutting it off there: a hard rectangle edge through the breast would read as a
    # finding, and a reader must be able to see where the model did not look.
    ys = (np.arange(out_rows) + 0.5) * sy
    xs = (np.arange(out_cols) + 0.5) * sx
    if geometry.flipped:
        xs = cols - xs
    ramp = max(1.0, HEATMAP_FADE * geometry.side)
    fade_y = np.clip(np.minimum(ys - top, bottom - ys) / ramp, 0.0, 1.0)
    fade_x = np.clip(np.minimum(xs - left, right - xs) / ramp, 0.0, 1.0)
    return (mapped * fade_y[:, None] * fade_x[None, :]).astype(np.float32)
