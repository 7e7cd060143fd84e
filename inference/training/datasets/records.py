"""The record types every dataset reader returns, and the one dataset exception.

Readers turn a dataset's own label files into a list of `ImageRecord`s. Nothing here opens an
image: decoding belongs to the DICOM/preprocessing modules, so reading a dataset's labels stays
cheap and testable without the pixels.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Ordered from least to most severe: the "worst" label of an image or a patient is the maximum.
IMAGE_LABELS = ("NORMAL", "BENIGN", "MALIGNANT")
LESION_PATHOLOGIES = ("BENIGN", "MALIGNANT")
SPLITS = ("train", "test")
LATERALITIES = ("L", "R", "")
VIEWS = ("CC", "MLO", "")


class DatasetError(Exception):
    """A dataset's files are missing or say something the reader cannot trust."""


def worst_label(labels: Iterable[str]) -> str:
    """The most severe of some image labels or lesion pathologies; 'NORMAL' for none."""
    worst = "NORMAL"
    for label in labels:
        if label not in IMAGE_LABELS:
            raise DatasetError(f"unknown label {label!r}; expected one of {IMAGE_LABELS}")
        if IMAGE_LABELS.index(label) > IMAGE_LABELS.index(worst):
            worst = label
    return worst


@dataclass(frozen=True)
class Lesion:
    """One annotated abnormality.

    `row`/`col` are the centre in array coordinates (origin top-left, row grows downwards) and
    `radius` is in pixels of the full image; all three are None where the dataset gives no
    location (MIAS rows without coordinates, CBIS-DDSM until a caller reads the mask).
    """

    row: float | None
    col: float | None
    radius: float | None
    pathology: str  # 'BENIGN' | 'MALIGNANT'
    kind: str  # MIAS class ('CALC', 'CIRC', ...) or CBIS-DDSM 'mass' / 'calcification'
    mask_path: Path | None = None  # CBIS-DDSM ROI mask file, when it was found

    def __post_init__(self) -> None:
        if self.pathology not in LESION_PATHOLOGIES:
            raise DatasetError(f"lesion pathology {self.pathology!r} is not one of {LESION_PATHOLOGIES}")
        if (self.row is None) != (self.col is None):
            raise DatasetError("a lesion needs both row and col, or neither")


@dataclass(frozen=True)
class ImageRecord:
    """One image (or one CBIS-DDSM crop) with its labels, as a dataset describes it.

    `patient_id` is the grouping key for any train/validation split: never put one woman's images
    on both sides. `split` is the dataset's own split; 'test' is sealed (see `splits.py`).
    """

    image_id: str  # unique within the dataset, e.g. 'mdb001', 'Mass-Training_P_00001_LEFT_CC'
    path: Path  # the image file (PNG, JPEG or DICOM)
    patient_id: str
    image_label: str  # 'NORMAL' | 'BENIGN' | 'MALIGNANT': the worst lesion
    split: str  # 'train' | 'test'
    laterality: str  # 'L' | 'R' | ''
    view: str  # 'CC' | 'MLO' | ''
    lesions: tuple[Lesion, ...] = ()
    dataset: str = ""  # 'mini-mias' | 'cbis-ddsm' | 'folder'

    def __post_init__(self) -> None:
        where = f"image {self.image_id!r}"
        if not self.image_id:
            raise DatasetError("an image record needs an image_id")
        if not self.patient_id:
            raise DatasetError(f"{where}: empty patient_id")
        if self.image_label not in IMAGE_LABELS:
            raise DatasetError(f"{where}: image_label {self.image_label!r} not in {IMAGE_LABELS}")
        if self.split not in SPLITS:
            raise DatasetError(f"{where}: split {self.split!r} not in {SPLITS}")
        if self.laterality not in LATERALITIES:
            raise DatasetError(f"{where}: laterality {self.laterality!r} not in {LATERALITIES}")
        if self.view not in VIEWS:
            raise DatasetError(f"{where}: view {self.view!r} not in {VIEWS}")
        if self.lesions:
            lesion_worst = worst_label(lesion.pathology for lesion in self.lesions)
            if lesion_worst != self.image_label:
                raise DatasetError(
                    f"{where}: image_label {self.image_label!r} but the worst lesion is {lesion_worst!r}"
                )

    @property
    def is_malignant(self) -> bool:
        return self.image_label == "MALIGNANT"

    @property
    def has_lesion(self) -> bool:
        """True when the image shows an abnormality (benign or malignant).

        Based on the label, not on `lesions`: a folder dataset knows an image is benign without
        knowing where the lesion is, so its `lesions` is empty.
        """
        return self.image_label != "NORMAL"
