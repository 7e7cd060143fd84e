"""What the platform knows about one CAD run, free of any database type: the model, each image, the density."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydicom.dataset import Dataset

from imaging.dicom_results.cad_sr.codes import COMPOSITIONS

Status = Literal["succeeded", "failed", "not_attempted"]
STATUSES = ("succeeded", "failed", "not_attempted")


@dataclass(frozen=True)
class CadAlgorithm:
    """The model that produced the results (TID 4019 Algorithm Identification)."""

    name: str
    version: str
    manufacturer: str
    model_sha256: str
    validated: bool  # False: research model, not validated for clinical use
    operating_point: float  # the threshold on the score, 0..1

    def __post_init__(self) -> None:
        if not (self.name.strip() and self.version.strip() and self.manufacturer.strip() and self.model_sha256):
            raise ValueError("name, version, manufacturer and model_sha256 are required")
        if not _unit_interval(self.operating_point):
            raise ValueError(f"operating_point must lie in [0, 1], not {self.operating_point!r}")


@dataclass(frozen=True)
class CadImage:
    """One image of the exam and what the platform did with it.

    source: the image's header (pixel data not needed). laterality and view: as the platform recorded them, used
    when the header lacks them (CBIS-DDSM). score: the model's score for the image, 0..1 (succeeded only). peak:
    (row, column) pixel indices of the heatmap's peak in the source image (succeeded only, optional).
    """

    source: Dataset
    status: Status
    laterality: Literal["L", "R", ""] = ""
    view: str = ""
    score: float | None = None
    peak: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")
        if self.laterality not in ("L", "R", ""):
            raise ValueError(f"laterality must be 'L', 'R' or empty, not {self.laterality!r}")
        if not self.source.get("SOPInstanceUID") or not self.source.get("SOPClassUID"):
            raise ValueError("the source needs its SOP Class UID and SOP Instance UID")
        if self.status == "succeeded":
            if self.score is None or not _unit_interval(self.score):
                raise ValueError(f"a succeeded image needs a score in [0, 1], not {self.score!r}")
        elif self.score is not None or self.peak is not None:
            raise ValueError(f"an image whose analysis {self.status.replace('_', ' ')} has no score and no peak")
        if self.peak is not None:
            row, column = self.peak
            if not (math.isfinite(row) and math.isfinite(column)):
                raise ValueError(f"peak must be finite, not {self.peak!r}")
            rows, columns = int(self.source.get("Rows") or 0), int(self.source.get("Columns") or 0)
            if rows and columns and not (-0.5 <= row <= rows - 0.5 and -0.5 <= column <= columns - 0.5):
                raise ValueError(f"peak {self.peak} lies outside the {rows} x {columns} image")


@dataclass(frozen=True)
class BreastComposition:
    """A density model's BI-RADS composition category ('a'..'d') per breast ('L', 'R') and/or for the exam."""

    categories: Mapping[str, str]
    algorithm: CadAlgorithm  # the density model: its name, version and whether it is validated

    def __post_init__(self) -> None:
        if not self.categories:
            raise ValueError("breast composition needs at least one category")
        for key, category in self.categories.items():
            if key not in ("L", "R", "exam"):
                raise ValueError(f"breast composition keys are 'L', 'R' or 'exam', not {key!r}")
            if category not in COMPOSITIONS:
                raise ValueError(f"breast composition categories are 'a' to 'd', not {category!r}")


def _unit_interval(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0
