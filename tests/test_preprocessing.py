"""The shared preprocessing: breast found and cropped, orientation normalised, aspect kept, and heatmaps mapped
back onto the original geometry exactly."""

from __future__ import annotations

import numpy as np
import pytest

from inference.serving.preprocessing import HEATMAP_FADE, heatmap_to_original, preprocess
from tests.dicom_factory import breast_phantom


def _phantom(rows=600, cols=400, chest_wall="left") -> np.ndarray:
    image = breast_phantom(rows, cols, bits_stored=16, chest_wall=chest_wall).astype(np.float32)
    return image / image.max()


def test_it_returns_a_square_three_channel_tensor_in_keras_range():
    out = preprocess(_phantom(), input_size=128)
    assert out.tensor.shape == (128, 128, 3) and out.tensor.dtype == np.float32
    assert out.tensor.min() >= 0.0 and out.tensor.max() <= 255.0 and out.tensor.max() > 200
    assert np.array_equal(out.tensor[..., 0], out.tensor[..., 2])


def test_it_crops_to_the_breast_and_keeps_the_aspect_ratio():
    pixels = np.zeros((1000, 800), np.float32)
    pixels[100:700, 0:300] = 0.8  # the breast against the left edge; the rest is background
    geometry = preprocess(pixels, input_size=100).geometry
    top, bottom, left, right = geometry.crop
    assert top <= 100 < 700 <= bottom and right >= 300 and right < 800 * 0.5
    assert geometry.side == bottom - top  # taller than wide: the height fills the square


def test_it_flips_right_sided_breasts_so_both_look_alike():
    pixels = _phantom(chest_wall="left")
    left = preprocess(pixels, input_size=96)
    right = preprocess(np.ascontiguousarray(pixels[:, ::-1]), input_size=96)
    assert not left.geometry.flipped and right.geometry.flipped
    assert np.abs(left.tensor - right.tensor).mean() < 1.0  # mirror images become the same input


def test_it_is_deterministic():
    pixels = _phantom()
    assert np.array_equal(preprocess(pixels, input_size=64).tensor, preprocess(pixels, input_size=64).tensor)


def _round_trip_peak(pixels: np.ndarray, point: tuple[int, int], input_size: int = 128) -> tuple[int, int]:
    """Put a bright spot at `point` in the original, find it in the network input, put a one-hot heatmap there,
    map it back, and return where its peak lands in the original."""
    marked = pixels.copy()
    marked[point[0] - 3 : point[0] + 4, point[1] - 3 : point[1] + 4] = 5.0
    prepared = preprocess(marked, input_size=input_size)
    channel = prepared.tensor[..., 0]
    cam = np.zeros((input_size, input_size), np.float32)
    r, c = np.unravel_index(np.argmax(channel), channel.shape)
    cam[r, c] = 1.0
    back = heatmap_to_original(cam, prepared.geometry)
    assert back.shape == pixels.shape
    return np.unravel_index(np.argmax(back), back.shape)


def test_heatmaps_map_back_onto_the_original_geometry_with_and_without_flip():
    for chest_wall in ("left", "right"):
        pixels = _phantom(700, 450, chest_wall=chest_wall)
        ys, xs = np.nonzero(pixels > 0.5)
        point = (int(np.median(ys)), int(np.median(xs)))
        found = _round_trip_peak(pixels, point)
        # Within a few original pixels (one network pixel is side/128 original pixels).
        assert abs(found[0] - point[0]) <= 8 and abs(found[1] - point[1]) <= 8, (chest_wall, point, found)


def test_heatmaps_map_to_a_smaller_preview_of_the_same_image():
    pixels = _phantom(800, 600)
    prepared = preprocess(pixels, input_size=64)
    cam = np.ones((8, 8), np.float32)
    small = heatmap_to_original(cam, prepared.geometry, out_shape=(200, 150))
    assert small.shape == (200, 150)
    top, bottom, left, right = prepared.geometry.crop
    fade = int(np.ceil(HEATMAP_FADE * prepared.geometry.side / 4)) + 1  # in preview pixels
    assert small[int(top / 4) + fade : int(bottom / 4) - fade, int(left / 4) + fade : int(right / 4) - fade].min() > 0.9
    if right < 600 - 8:
        assert small[:, int(right / 4) + 2 :].max() == 0.0  # nothing outside the crop


def test_a_heatmap_fades_out_at_the_edge_of_what_the_model_saw_instead_of_stopping_at_a_rectangle():
    """A map that is hot everywhere the model looked must not end in a hard edge at the crop box (which would cut
    through the breast and read as a finding): it falls to zero over a ramp, never by more than a small step."""
    pixels = _phantom(800, 600)
    prepared = preprocess(pixels, input_size=64)
    back = heatmap_to_original(np.ones((8, 8), np.float32), prepared.geometry)
    top, bottom, left, right = prepared.geometry.crop
    row = back[(top + bottom) // 2]
    steps = np.abs(np.diff(row))
    ramp = HEATMAP_FADE * prepared.geometry.side
    assert steps.max() <= 1.5 / ramp  # at most about one ramp-th of the full height per pixel: no cliff
    assert row[(left + right) // 2] == pytest.approx(1.0, abs=1e-3)
    assert row[: max(left - 1, 0)].max(initial=0.0) == 0.0 and row[right + 1 :].max(initial=0.0) == 0.0
