"""Reading the reading viewer back from chromium: screenshots of its cells as pixel arrays, where the bright dot of
tests/viewer_exam.py is drawn, where an image point should be drawn, and a page opener that fails on any console
error or Content-Security-Policy violation. Shared by the viewer harness tests and the reading-page tests."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

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
