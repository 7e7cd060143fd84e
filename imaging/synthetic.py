"""Synthetic mammograms the platform makes itself, for checking a model before it runs on anyone's images (the
conformance check of an imported model: inference.imports.conformance). Django-free, NumPy only, deterministic.

Each is a 2-D float32 picture in [0, 1] as imaging.decoding gives one (bright = dense tissue): a breast growing out
of the chest wall on its side, thinning towards the skin line, with low-frequency glandular texture of a chosen
density and, in some, a small bright mass. Not a patient and not realistic enough to measure accuracy on: enough to
see that a model loads, takes the input, gives one number per image in range, the same twice, and how fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticMammogram:
    pixels: np.ndarray  # (rows, columns) float32 in [0, 1]
    laterality: str  # 'L' | 'R'
    view: str  # 'CC' | 'MLO'
    density: float  # 0 (fatty) .. 1 (dense): how much glandular texture
    mass: bool


def _smooth_noise(rows: int, columns: int, rng: np.random.Generator, cells: int = 12) -> np.ndarray:
    """Low-frequency texture in [0, 1]: a coarse random grid interpolated bilinearly."""
    coarse = rng.random((cells, cells))
    ys, xs = np.linspace(0, cells - 1, rows), np.linspace(0, cells - 1, columns)
    y0, x0 = np.minimum(ys.astype(int), cells - 2), np.minimum(xs.astype(int), cells - 2)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def synthetic_mammogram(
    *,
    rows: int = 512,
    columns: int = 384,
    laterality: str = "L",
    view: str = "CC",
    density: float = 0.5,
    mass: bool = False,
    seed: int = 0,
) -> SyntheticMammogram:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    # A left breast has its chest wall on the image's right (viewed from the front), a right breast on the left.
    depth = (columns - 1 - x) if laterality == "L" else x
    centre = rows * (0.45 if view == "MLO" else 0.5)
    reach, height = (0.8, 0.47) if view == "MLO" else (0.72, 0.42)
    ellipse = (depth / (reach * columns)) ** 2 + ((y - centre) / (height * rows)) ** 2
    inside = ellipse < 1.0
    thickness = np.sqrt(np.clip(1.0 - ellipse, 0.0, 1.0))
    texture = _smooth_noise(rows, columns, rng)
    image = np.full((rows, columns), 0.03)
    image[inside] = 0.22 + 0.35 * thickness[inside] + (0.08 + 0.3 * density) * texture[inside] * thickness[inside]
    if view == "MLO":  # the pectoral muscle: a bright triangle in the corner at the chest wall, top
        wall = depth < (0.25 * columns) * (1 - y / (0.6 * rows))
        image[wall & inside] = np.maximum(image[wall & inside], 0.75)
    if mass:
        my, mx = centre + 0.1 * rows, 0.35 * columns
        mx = columns - 1 - mx if laterality == "L" else mx
        radius = max(3.0, min(rows, columns) / 28)
        image += 0.22 * np.exp(-((y - my) ** 2 + (x - mx) ** 2) / (2 * radius**2)) * inside
    image += rng.normal(0.0, 0.004, size=image.shape)
    pixels = np.clip(image, 0.0, 1.0).astype(np.float32)
    return SyntheticMammogram(pixels=pixels, laterality=laterality, view=view, density=density, mass=mass)


def synthetic_screening_set(count: int = 8, *, rows: int = 512, columns: int = 384) -> list[SyntheticMammogram]:
    """`count` different synthetic mammograms: both sides, both views, densities from fatty to dense, every
    other one with a mass. The same set every time."""
    images = []
    for i in range(count):
        images.append(
            synthetic_mammogram(
                rows=rows,
                columns=columns,
                laterality="LR"[i % 2],
                view=("CC", "MLO")[(i // 2) % 2],
                density=(i % 4) / 3,
                mass=i % 2 == 1,
                seed=1000 + i,
            )
        )
    return images
