"""Naming and checking the views a density model is given: keys "L-CC", "R-CC", "L-MLO", "R-MLO" (the NYU
reference's names), each a 2-D greyscale array (imaging.decoding's float pixels in [0, 1], or 8-bit levels)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

NYU_VIEW_ORDER = ("L-CC", "R-CC", "L-MLO", "R-MLO")  # the order of the reference's four histograms
SIDES = ("L", "R")
VIEW_POSITIONS = ("CC", "MLO")


class DensityInputError(ValueError):
    """The views cannot be assessed by this model (missing, unknown or unusable); `reason` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def view_key(laterality: str, view: str) -> str:
    """('L', 'CC') -> 'L-CC'; accepts the platform's laterality/view strings in any case."""
    side, position = laterality.strip().upper()[:1], view.strip().upper()
    if side not in SIDES or position not in VIEW_POSITIONS:
        raise DensityInputError("unknown_view", f"{laterality!r} {view!r} is not L/R CC/MLO.")
    return f"{side}-{position}"


def checked_views(views: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The given views, keys normalised ('l-cc' -> 'L-CC'), unknown keys and non-images refused."""
    checked: dict[str, np.ndarray] = {}
    for key, pixels in views.items():
        side, _, position = str(key).partition("-")
        name = view_key(side, position)
        if name in checked:
            raise DensityInputError("duplicate_view", f"Two images were given for {name}; pass one per view.")
        array = np.asarray(pixels)
        if array.ndim != 2 or min(array.shape) < 2:
            raise DensityInputError("not_an_image", f"{name} is not a 2-D greyscale image (shape {array.shape}).")
        checked[name] = array
    return checked


def other_view(name: str) -> str:
    """The same breast's other view: 'L-CC' -> 'L-MLO'."""
    side, position = name.split("-")
    return f"{side}-{'MLO' if position == 'CC' else 'CC'}"
