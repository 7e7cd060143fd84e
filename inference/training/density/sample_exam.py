"""The NYU reference's sample exam (four 2600 x 2000 8-bit PNGs) through the port: the published output is the
port's acceptance test (tests/test_density_nyu.py, and the conversion command before it writes a card)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from inference.density.histogram import view_histogram
from inference.density.views import NYU_VIEW_ORDER


def sample_exam_views(images: Path) -> dict[str, np.ndarray]:
    """The four PNGs as 8-bit levels, exactly as the reference reads them (greyscale, no rescaling)."""
    from PIL import Image

    views = {}
    for name in NYU_VIEW_ORDER:
        with Image.open(Path(images) / f"{name}.png") as image:
            if image.mode != "L":
                raise ValueError(f"{name}.png is {image.mode}, not 8-bit greyscale.")
            views[name] = np.asarray(image, dtype=np.uint8)
    return views


def sample_exam_reproduction(model, images: Path, published: dict[str, float]) -> dict:
    """The port's output beside the published one, and the exact-arithmetic histogram's (why the reference's
    float32 arithmetic is followed: inference.density.histogram)."""
    views = sample_exam_views(images)
    started = time.monotonic()
    port, _ = model.predict_exam(views)
    seconds = time.monotonic() - started
    exact = model.predict_histograms(
        np.concatenate([view_histogram(views[n], exact=True) for n in NYU_VIEW_ORDER])[None]
    )
    port_values = dict(zip("abcd", map(float, port), strict=True))
    exact_values = dict(zip("abcd", map(float, exact[0]), strict=True))
    return {
        "published": published,
        "port": port_values,
        "max_abs_difference": max(abs(port_values[c] - published[c]) for c in "abcd"),
        "port_exact_arithmetic": exact_values,
        "exact_arithmetic_max_abs_difference": max(abs(exact_values[c] - published[c]) for c in "abcd"),
        "seconds": seconds,
        "note": "The four grey levels lying exactly on bin edges land where the reference's float32 arithmetic "
        "(numpy 1.14) put them; histograms in exact arithmetic move the output by up to the difference shown in "
        "the last row: a measure of how much the published digits owe to rounding, not to the breast.",
    }
