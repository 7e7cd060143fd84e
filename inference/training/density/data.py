"""mini-MIAS as a density dataset: every image's tissue label (Info.txt, second column), grouped by woman.

Facts this relies on (checked on the real files by tests/test_density_training.py): all 322 images are MLO views;
consecutive images mdbNNN (odd, right) and mdbNNN+1 (even, left) are one woman (splits.csv's patient); both breasts
of every woman carry the same tissue label, so the label is the woman's; splits.csv's sealed test split is never
read by training (`density_women(..., split='train')`), only by the one test evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.training.datasets import DatasetError, ImageRecord, only_split, read_mini_mias
from inference.training.datasets.mias import read_mini_mias_tissue

TISSUES = ("F", "G", "D")  # ordinal: fatty < fatty-glandular < dense-glandular
TISSUE_NAMES = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}


@dataclass(frozen=True)
class DensityWoman:
    patient_id: str
    tissue: str
    images: dict[str, ImageRecord]  # 'L' / 'R' -> the MLO image of that breast

    @property
    def label(self) -> int:
        return TISSUES.index(self.tissue)


def density_records(*, root: Path, split: str) -> tuple[list[ImageRecord], dict[str, str]]:
    """(the split's image records, refnum -> tissue)."""
    records = only_split(read_mini_mias(root=root), split)
    return records, read_mini_mias_tissue(root=root)


def density_women(*, root: Path, split: str) -> list[DensityWoman]:
    """The split's women, each with her two MLO images and her tissue label, sorted by patient id."""
    records, tissue = density_records(root=root, split=split)
    by_woman: dict[str, list[ImageRecord]] = {}
    for record in records:
        by_woman.setdefault(record.patient_id, []).append(record)
    women = []
    for patient, images in sorted(by_woman.items()):
        sides = {record.laterality: record for record in images}
        labels = {tissue[record.image_id] for record in images}
        if set(sides) != {"L", "R"} or len(images) != 2:
            raise DatasetError(f"{patient}: expected one left and one right MLO image, got {sorted(sides)}")
        if len(labels) != 1:
            raise DatasetError(f"{patient}: her breasts have different tissue labels {sorted(labels)}")
        women.append(DensityWoman(patient_id=patient, tissue=labels.pop(), images=sides))
    return women


def decode_pixels(record: ImageRecord) -> np.ndarray:
    """An image as the platform decodes it (float32 in [0, 1], working resolution): what serving will see."""
    from inference.serving.preprocessing import decode_for_model

    return decode_for_model(filename=record.path.name, data=record.path.read_bytes()).pixels


def image_rows(women: list[DensityWoman]) -> list[tuple[DensityWoman, str, ImageRecord]]:
    """(woman, side, image) for every image, in a fixed order (women sorted, left before right)."""
    return [(woman, side, woman.images[side]) for woman in women for side in ("L", "R")]
