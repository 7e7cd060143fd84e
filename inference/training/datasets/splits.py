"""Patient-grouped, stratified train/validation splits.

Rules: a patient's images always land on one side (two views of one woman on both sides would
flatter validation figures); each split keeps the classes in proportion by stratifying on the
patient's worst label; the same seed always gives the same split; and the dataset's sealed 'test'
split is refused unless `allow_test=True`, so nobody tunes on it by accident.
"""

import logging
import random
from collections.abc import Callable, Hashable, Iterable, Sequence

from inference.training.datasets.records import IMAGE_LABELS, SPLITS, DatasetError, ImageRecord

logger = logging.getLogger(__name__)

LabelFn = Callable[[ImageRecord], Hashable]


def _image_label(record: ImageRecord) -> Hashable:
    return record.image_label


def only_split(records: Iterable[ImageRecord], split: str) -> list[ImageRecord]:
    """The records of one of the dataset's own splits ('train' or 'test')."""
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, not {split!r}")
    return [record for record in records if record.split == split]


def patient_kfold(
    records: Sequence[ImageRecord],
    *,
    k: int,
    seed: int,
    label: LabelFn = _image_label,
    allow_test: bool = False,
) -> list[tuple[list[ImageRecord], list[ImageRecord]]]:
    """k (train, validation) pairs; every patient is in exactly one validation fold.

    Patients are stratified by their worst `label` (the most severe image label, or the largest
    value for a custom label such as `lambda r: r.is_malignant`) and dealt to the folds in turn,
    so each fold's class counts differ by at most one patient. Records keep their input order.
    """
    if k < 2:
        raise DatasetError(f"k-fold needs k >= 2, not {k}")
    _refuse_test(records, allow_test=allow_test)
    strata = _shuffled_strata(records, seed=seed, label=label)
    n_patients = sum(len(patients) for _, patients in strata)
    if n_patients < k:
        raise DatasetError(f"{n_patients} patient(s) cannot fill {k} folds")
    small = [stratum for stratum, patients in strata if len(patients) < k]
    if small:
        logger.warning("classes %s have fewer than %d patients: some folds lack them", small, k)

    fold_of: dict[str, int] = {}
    position = 0  # carried across strata so that fold sizes stay balanced overall
    for _, patients in strata:
        for patient in patients:
            fold_of[patient] = position % k
            position += 1
    return [
        (
            [record for record in records if fold_of[record.patient_id] != fold],
            [record for record in records if fold_of[record.patient_id] == fold],
        )
        for fold in range(k)
    ]


def patient_holdout(
    records: Sequence[ImageRecord],
    *,
    fraction: float,
    seed: int,
    label: LabelFn = _image_label,
    allow_test: bool = False,
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(train, validation) with about `fraction` of each class's patients in validation."""
    if not 0 < fraction < 1:
        raise DatasetError(f"fraction must be between 0 and 1, not {fraction}")
    _refuse_test(records, allow_test=allow_test)
    validation: set[str] = set()
    for _, patients in _shuffled_strata(records, seed=seed, label=label):
        validation.update(patients[: int(len(patients) * fraction + 0.5)])
    train = [record for record in records if record.patient_id not in validation]
    val = [record for record in records if record.patient_id in validation]
    if not train or not val:
        raise DatasetError(f"a {fraction:.0%} hold-out of {len(records)} record(s) leaves one side empty")
    return train, val


def _refuse_test(records: Sequence[ImageRecord], *, allow_test: bool) -> None:
    if not records:
        raise DatasetError("no records to split")
    if allow_test:
        return
    sealed = [record.image_id for record in records if record.split == "test"]
    if sealed:
        raise DatasetError(
            f"{len(sealed)} record(s) from the sealed 'test' split (e.g. {sealed[:3]}): split "
            "only_split(records, 'train'), or pass allow_test=True if you really mean it"
        )


def _shuffled_strata(records: Sequence[ImageRecord], *, seed: int, label: LabelFn) -> list[tuple[Hashable, list[str]]]:
    """[(stratum, patient ids in a seeded random order)] in a fixed stratum order."""
    labels_of: dict[str, list[Hashable]] = {}
    for record in records:
        labels_of.setdefault(record.patient_id, []).append(label(record))
    by_stratum: dict[Hashable, list[str]] = {}
    for patient, labels in labels_of.items():
        by_stratum.setdefault(_worst(labels), []).append(patient)
    rng = random.Random(seed)
    strata = []
    for stratum in sorted(by_stratum, key=repr):
        patients = sorted(by_stratum[stratum])  # input order must not change the result
        rng.shuffle(patients)
        strata.append((stratum, patients))
    return strata


def _worst(labels: list[Hashable]) -> Hashable:
    if all(label in IMAGE_LABELS for label in labels):
        return max(labels, key=IMAGE_LABELS.index)
    try:
        return max(labels)  # type: ignore[type-var]
    except TypeError:
        raise DatasetError(f"cannot rank labels {sorted(set(map(repr, labels)))}") from None
