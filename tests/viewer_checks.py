"""Reading the reading viewer back from chromium: screenshots of its cells as pixel arrays, where the bright dot of
tests/viewer_exam.py is drawn, where an image point should be drawn, and a page opener that fails on any console
error or Content-Security-Policy violation. Shared by the viewer harness tests and the reading-page tests."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from tests.viewer_exam import COLUMNS, DOTS, PATCH_DEPTH, PATCH_ROWS_A, PATCH_ROWS_B

READY = "[data-mammo-viewer][data-state=ready], [data-mammo-viewer][data-state=failed]"


@dataclass
class OpenedViewer:
    page: object
    console_errors: list[str]
    csp_violations: list[str]


def open_viewer(context, url: str, *, timeout: float = 60_000) -> OpenedViewer:
    page = context.new_page()
    errors: list[str] = []
    violations: list[str] = []

    def on_console(message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            violations.append(text)
        elif message.type == "error" and "favicon" not in text and "404" not in text:
            errors.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector(READY, timeout=timeout)
    state = page.get_attribute("[data-mammo-viewer]", "data-state")
    assert state == "ready", f"viewer failed: {page.inner_text('.mv-message')} {errors}"
    settle(page)
    return OpenedViewer(page=page, console_errors=errors, csp_violations=violations)


def settle(page, pause: float = 0.15) -> None:
    """Let Cornerstone draw what the last action asked for (it renders on the next animation frames)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())))")
    time.sleep(pause)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())))")


def cell(page, key: str):
    return page.locator(f'.mv-cell[data-cell="{key}"]')


def cell_keys(page) -> list[str]:
    return page.locator(".mv-cell").evaluate_all("cells => cells.map(c => c.dataset.cell)")


def cell_rect(page, key: str) -> dict:
    return cell(page, key).bounding_box()


def drawn_box(page, key: str) -> dict:
    left, top, width, height = (float(v) for v in cell(page, key).get_attribute("data-box").split(","))
    return {"left": left, "top": top, "width": width, "height": height}


def pixels(page, key: str) -> np.ndarray:
    """The cell as drawn on screen (RGB uint8, one array element per CSS pixel at device pixel ratio 1)."""
    png = cell(page, key).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def find_dot(rgb: np.ndarray, *, threshold: int = 245) -> tuple[float, float] | None:
    """Centre (x, y) in cell pixels of the white dot: the only near-white, grey (not coloured) pixels."""
    grey = (rgb.min(axis=2) >= threshold) & ((rgb.max(axis=2) - rgb.min(axis=2)) < 12)
    ys, xs = np.nonzero(grey)
    if xs.size == 0:
        return None
    return float(xs.mean()) + 0.5, float(ys.mean()) + 0.5


def screen_point(box: dict, inner: str, columns: int, row: float, depth: float) -> tuple[float, float]:
    """Where the hanging protocol must draw a point of the canonical breast (row, distance from the chest wall,
    continuous pixels): chest wall against the inner edge of the cell, lateral side up."""
    scale = box["width"] / columns
    x = box["left"] + depth * scale if inner == "left" else box["left"] + box["width"] - depth * scale
    return x, box["top"] + row * scale


def mean_grey(rgb: np.ndarray, x: float, y: float, radius: int = 3) -> float:
    xi, yi = int(round(x)), int(round(y))
    patch = rgb[yi - radius : yi + radius + 1, xi - radius : xi + radius + 1]
    return float(patch.mean())


def coloured_fraction(rgb: np.ndarray, *, spread: int = 60) -> float:
    """Share of pixels with clearly different channels: the heatmap's colours on a greyscale mammogram."""
    return float(((rgb.max(axis=2).astype(int) - rgb.min(axis=2)) > spread).mean())


def linear_window(value: float, centre: float, width: float) -> float:
    """DICOM PS3.3 C.11.2.1.2.1 linear VOI function, output 0..255."""
    return min(255.0, max(0.0, ((value - (centre - 0.5)) / (width - 1) + 0.5) * 255.0))


# ------------------------------------------------------------------- the exam of tests/viewer_exam.py on screen

FOUR = ["current-RCC", "current-LCC", "current-RMLO", "current-LMLO"]


def view_of(key, page=None):
    return key.split("-")[1][1:]


def dot_expected(page, key, exam_view, *, columns=COLUMNS, dots=DOTS):
    box = drawn_box(page, key)
    inner = cell(page, key).get_attribute("data-inner")
    row, depth = dots[exam_view]
    return screen_point(box, inner, columns, row + 0.5, depth + 0.5)


def assert_hung_mirrored(page, keys=FOUR, *, columns=COLUMNS, dots=DOTS):
    """Each breast fits its cell (its frame: the tissue's box from the chest wall out, stage.js), with the chest wall
    against the inner edge, and its dot is drawn exactly where the anatomy says: so the flips (by PatientOrientation
    or by pixels) were right."""
    for key in keys:
        slot = cell(page, key).get_attribute("data-slot")
        rect = cell_rect(page, key)
        box = drawn_box(page, key)
        _, _, frame_width, frame_height = (float(v) for v in cell(page, key).get_attribute("data-frame").split(","))
        scale = box["width"] / columns  # screen pixels per image pixel
        assert frame_height * scale == pytest.approx(rect["height"], abs=1.5) or frame_width * scale == pytest.approx(
            rect["width"], abs=1.5
        ), (key, box, rect, frame_width, frame_height)  # fitted: the breast, not the whole detector
        assert box["height"] >= rect["height"] - 1.5 or box["width"] >= rect["width"] - 1.5, key
        if slot[0] == "R":
            assert box["left"] + box["width"] == pytest.approx(rect["width"], abs=1.5), key  # chest wall in the middle
        else:
            assert box["left"] == pytest.approx(0, abs=1.5), key
        found = find_dot(pixels(page, key))
        expected = dot_expected(page, key, slot[1:], columns=columns, dots=dots)
        assert found is not None, key
        assert found[0] == pytest.approx(expected[0], abs=2.5) and found[1] == pytest.approx(expected[1], abs=2.5), (
            key,
            found,
            expected,
        )


def patch_greys(page, key, rgb=None):
    rgb = pixels(page, key) if rgb is None else rgb
    box = drawn_box(page, key)
    inner = cell(page, key).get_attribute("data-inner")
    depth = sum(PATCH_DEPTH) / 2
    a = screen_point(box, inner, COLUMNS, sum(PATCH_ROWS_A) / 2, depth)
    b = screen_point(box, inner, COLUMNS, sum(PATCH_ROWS_B) / 2, depth)
    return mean_grey(rgb, *a), mean_grey(rgb, *b)
