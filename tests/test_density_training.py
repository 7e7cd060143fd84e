"""Training and measuring density models (inference.training.density): labels, woman-level folds and intervals,
the read-out's conversion to Keras, and the sealed test split's guards. Fast: no full training run.

    bash test.sh tests/test_density_training.py -q

Tests on the real mini-MIAS files read MAMMO_DATA_DIR and skip with the reason when it is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from inference.metrics import cluster_bootstrap_ci, weighted_kappa
from inference.training.datasets import DatasetError, ImageRecord
from inference.training.density.agreement import agreement_summary
from inference.training.density.crossval import TrainingSet, fit_readout, woman_level
from inference.training.density.data import TISSUES, density_women


def _mias_root() -> Path:
    root = Path(settings.MAMMO_DATA_DIR) / "mini-mias"
    if not (root / "Info.txt").is_file():
        pytest.skip(f"mini-MIAS not found at {root} (set MAMMO_DATA_DIR).")
    return root


def test_every_mini_mias_woman_has_two_mlo_images_with_one_tissue_label():
    root = _mias_root()
    train, test = density_women(root=root, split="train"), density_women(root=root, split="test")

    assert (len(train), len(test)) == (112, 49)
    assert {w.patient_id for w in train}.isdisjoint(w.patient_id for w in test)
    assert {t: sum(w.tissue == t for w in train) for t in TISSUES} == {"F": 35, "G": 31, "D": 46}
    assert all(w.images["L"].view == "MLO" and w.images["R"].laterality == "R" for w in train)


def test_woman_folds_refuse_the_sealed_test_split():
    from inference.training.density.crossval import _folds

    women = density_women(root=_mias_root(), split="test")[:10]
    data = _training_set([w.images[s] for w in women for s in "LR"], dimensions=3)
    with pytest.raises(DatasetError, match="sealed 'test' split"):
        _folds(data, np.arange(len(data.labels)), k=5, seed=0)


def test_the_nyu_protocol_is_chosen_on_the_train_split_only():
    from inference.density import density_model_get
    from inference.training.density.evaluation import nyu_train_protocol

    women = density_women(root=_mias_root(), split="test")[:2]
    with pytest.raises(ValueError, match="train split only"):
        nyu_train_protocol(density_model_get("nyu-histogram").network, women, n_bootstrap=10, seed=0)


def test_weighted_kappa_matches_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    predictions = np.clip(labels + rng.integers(-1, 2, 60), 0, 2)
    for weights in ("linear", "quadratic"):
        assert weighted_kappa(labels, predictions, classes=3, weights=weights) == pytest.approx(
            cohen_kappa_score(labels, predictions, weights=weights), abs=1e-12
        )


def test_intervals_resample_whole_women():
    """Two identical images per woman must not narrow the interval: a woman-level bootstrap of duplicated rows
    gives the interval of the women themselves (the same seeded draws)."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 40)
    predictions = np.where(rng.random(40) < 0.7, labels, rng.integers(0, 3, 40))
    women = np.arange(40)

    def kappa(y, p):
        return weighted_kappa(y, p, classes=3)

    once = cluster_bootstrap_ci(kappa, labels, predictions, women, n=300, seed=3)
    twice = cluster_bootstrap_ci(
        kappa, np.repeat(labels, 2), np.repeat(predictions, 2), np.repeat(women, 2), n=300, seed=3
    )
    assert once == pytest.approx(twice)

    summary = agreement_summary(labels, predictions, clusters=women, class_names=TISSUES, dense=("D",), n_bootstrap=200)
    assert summary["accuracy_interval"] == "Wilson" and summary["women"] == 40
    assert summary["accuracy_ci95"][0] < summary["accuracy"] < summary["accuracy_ci95"][1]
    assert sum(map(sum, summary["confusion"])) == 40


def test_the_keras_readout_reproduces_the_fitted_logistic_regression():
    from inference.density.mias_model import readout_network

    rng = np.random.default_rng(0)
    records = [_record(f"w{i:02d}", side) for i in range(30) for side in "LR"]
    data = _training_set(records, dimensions=6)
    data.features["breast-quantiles"] = rng.normal(size=(60, 6)) + data.labels[:, None] * 0.8
    data.features["breast-quantiles"][:, 5] = 1.0  # a constant feature: scikit-learn leaves it unscaled

    pipeline, _ = fit_readout(data, "breast-quantiles", np.arange(60), seed=0)
    scaler, regression = pipeline.named_steps["standardscaler"], pipeline.named_steps["logisticregression"]
    network = readout_network(
        features=6, mean=scaler.mean_, variance=scaler.scale_**2, coef=regression.coef_, intercept=regression.intercept_
    )
    x = data.features["breast-quantiles"]
    assert np.abs(np.asarray(network(x.astype(np.float32))) - pipeline.predict_proba(x)).max() < 1e-5

    labels, mean, patients = woman_level(data, pipeline.predict_proba(x))
    assert len(patients) == 30 and mean.shape == (30, 3)


def test_the_test_split_is_refused_until_the_card_is_committed(tmp_path):
    _mias_root()
    folder = tmp_path / "density-mini-mias"
    shutil.copytree(Path(settings.BASE_DIR) / "default_model" / "density-mini-mias", folder)
    with pytest.raises(CommandError, match="not committed"):
        call_command("evaluate_density_model", model_dir=folder, split="test")


def test_the_mini_mias_model_has_no_train_split_evaluation():
    _mias_root()
    with pytest.raises(CommandError, match="cross-validation in its card"):
        call_command("evaluate_density_model", model="mini-mias", split="train")


def _record(patient: str, side: str, split: str = "train") -> ImageRecord:
    return ImageRecord(
        image_id=f"{patient}{side}",
        path=Path(f"/nowhere/{patient}{side}.png"),
        patient_id=patient,
        image_label="NORMAL",
        split=split,
        laterality=side,
        view="MLO",
    )


def _training_set(records: list[ImageRecord], *, dimensions: int) -> TrainingSet:
    patients = sorted({r.patient_id for r in records})
    label_of = {p: i % 3 for i, p in enumerate(patients)}
    return TrainingSet(
        women=[],
        image_ids=[r.image_id for r in records],
        patients=np.array([r.patient_id for r in records]),
        labels=np.array([label_of[r.patient_id] for r in records]),
        features={"breast-quantiles": np.zeros((len(records), dimensions))},
        records=records,
    )
