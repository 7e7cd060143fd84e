"""Dataset readers: mini-MIAS, CBIS-DDSM and a user's own labelled folders.

Each reader returns `ImageRecord`s; `splits` makes patient-grouped, stratified validation splits
that refuse the sealed 'test' split. Nothing here decodes pixels.
"""

from inference.training.datasets.cbis_ddsm import lesion_centre_from_mask, read_cbis_ddsm
from inference.training.datasets.folder import read_image_folder
from inference.training.datasets.mias import read_mini_mias
from inference.training.datasets.records import (
    IMAGE_LABELS,
    DatasetError,
    ImageRecord,
    Lesion,
    worst_label,
)
from inference.training.datasets.splits import only_split, patient_holdout, patient_kfold

__all__ = [
    "IMAGE_LABELS",
    "DatasetError",
    "ImageRecord",
    "Lesion",
    "lesion_centre_from_mask",
    "only_split",
    "patient_holdout",
    "patient_kfold",
    "read_cbis_ddsm",
    "read_image_folder",
    "read_mini_mias",
    "worst_label",
]
