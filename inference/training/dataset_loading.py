"""Dataset records for the training and evaluation commands: where the data lives (Django setting or environment
`MAMMO_DATA_DIR`, default `<repo>/../shared/data`; a command's --data-path wins) and which reader reads it."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from inference.training.datasets import (
    DatasetError,
    ImageRecord,
    lesion_centre_from_mask,
    read_cbis_ddsm,
    read_image_folder,
    read_mini_mias,
)

logger = logging.getLogger(__name__)

DATASETS = ("mini-mias", "cbis-ddsm", "folder")
REPO = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """MAMMO_DATA_DIR from Django's settings or the environment; else `<repo>/../shared/data`."""
    configured = None
    try:
        from django.conf import settings

        configured = getattr(settings, "MAMMO_DATA_DIR", None)
    except Exception:  # noqa: BLE001  (settings not configured: plain scripts)
        configured = None
    configured = configured or os.environ.get("MAMMO_DATA_DIR")
    return Path(configured) if configured else REPO.parent / "shared" / "data"


def load_records(
    *, dataset: str, data_path: Path | None = None, csv_dir: Path | None = None, lesion_centres: bool = True
) -> tuple[list[ImageRecord], Path, str]:
    """(records of every split, the data path used, a one-line description for the model card)."""
    if dataset not in DATASETS:
        raise DatasetError(f"Unknown dataset {dataset!r}; choose one of {DATASETS}.")
    if dataset == "folder" and data_path is None:
        raise DatasetError("--data-path is required for a folder dataset.")
    root = Path(data_path) if data_path else data_dir() / dataset
    if not root.exists():
        raise DatasetError(f"Data folder {root} does not exist (set MAMMO_DATA_DIR or pass --data-path).")
    if dataset == "mini-mias":
        return read_mini_mias(root=root), root, "mini-MIAS (MIAS MiniMammographic Database), splits.csv patient split"
    if dataset == "folder":
        return read_image_folder(root=root), root, f"image folder {root.name}"
    records = read_cbis_ddsm(root=root, csv_dir=Path(csv_dir) if csv_dir else root, missing="skip")
    if lesion_centres:
        records = [with_mask_centres(record) for record in records]
    return records, root, "CBIS-DDSM full mammograms, official train/test split"


def with_mask_centres(record: ImageRecord) -> ImageRecord:
    """CBIS-DDSM lesions get their centre and radius from their ROI mask (decoded by imaging.decoding)."""
    from imaging.decoding import decode_image
    from imaging.limits import DecodeLimits
    from inference.training.patches import TRUSTED_LIMITS_KW

    lesions = []
    for lesion in record.lesions:
        if lesion.row is None and lesion.mask_path is not None:
            try:
                mask = decode_image(
                    filename=lesion.mask_path.name,
                    data=lesion.mask_path.read_bytes(),
                    limits=DecodeLimits(**TRUSTED_LIMITS_KW),
                ).pixels
                row, col, radius = lesion_centre_from_mask(mask > 0.5)
                lesion = replace(lesion, row=row, col=col, radius=radius)
            except Exception as exc:  # noqa: BLE001  (a bad mask leaves the lesion without a location)
                logger.warning("No lesion centre from %s: %s", lesion.mask_path, exc)
        lesions.append(lesion)
    return replace(record, lesions=tuple(lesions))
