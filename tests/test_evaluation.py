"""Evaluation: metric functions against known values, the operating point chosen on validation data only, and
`evaluate_model` writing its report through the serving path on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inference.metrics import (
    SealedSplitError,
    at_threshold,
    auc_summary,
    bootstrap_ci,
    calibration_bins,
    choose_operating_point,
    roc_auc,
    task_aucs,
    wilson_ci,
)
from tests.test_training import TINY, make_synthetic_mias


def test_it_scores_perfect_inverted_and_uninformative_rankings():
    labels = [0, 0, 0, 1, 1, 1]
    assert roc_auc(labels, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]) == 1.0
    assert roc_auc(labels, [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc(labels, [0.5] * 6) == 0.5  # ties count one half
    assert roc_auc([0, 1, 0, 1], [0.1, 0.4, 0.5, 0.8]) == 0.75
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_it_matches_scikit_learn_on_random_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.3 * labels, 1)  # with ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_it_gives_a_bootstrap_interval_around_the_estimate():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(60), np.ones(40)]
    scores = rng.normal(size=100) + labels
    summary = auc_summary(labels, scores, n_bootstrap=300)
    low, high = summary["auc_ci95"]
    assert low < summary["auc"] < high
    assert 0.6 < summary["auc"] < 0.9 and high - low < 0.3
    # Same seed, same interval: a report re-runs to the same figures.
    assert bootstrap_ci(roc_auc, labels, scores, n=300, seed=0) == (low, high)


def test_it_counts_sensitivity_and_specificity_at_a_threshold():
    point = at_threshold([1, 1, 1, 1, 0, 0, 0, 0, 0], [0.9, 0.8, 0.6, 0.2, 0.7, 0.3, 0.2, 0.1, 0.05], 0.5)
    assert (point.true_positives, point.false_negatives, point.true_negatives, point.false_positives) == (3, 1, 4, 1)
    assert point.sensitivity == 0.75 and point.specificity == 0.8
    # At exactly the threshold the platform calls it malignant (probability >= threshold).
    assert at_threshold([1], [0.5], 0.5).sensitivity == 1.0


def test_it_gives_wilson_intervals():
    low, high = wilson_ci(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_ci(0, 5)[0] == 0.0 and wilson_ci(5, 5)[1] == 1.0


def test_it_chooses_the_highest_threshold_reaching_the_target_sensitivity():
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    probabilities = [0.9, 0.8, 0.4, 0.3, 0.6, 0.35, 0.2, 0.1]
    point = choose_operating_point(labels, probabilities, splits=["train"] * 8, target_sensitivity=0.75)
    assert point.threshold == 0.4 and point.sensitivity == 0.75 and point.specificity == 0.75
    youden = choose_operating_point(labels, probabilities, splits=["train"] * 8, method="youden")
    assert youden.sensitivity + youden.specificity - 1 == pytest.approx(0.5)


def test_it_refuses_to_choose_the_operating_point_on_the_test_split():
    with pytest.raises(SealedSplitError):
        choose_operating_point([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2], splits=["train", "train", "test", "train"])


def test_it_reports_the_three_tasks_and_calibration_bins():
    labels = ["MALIGNANT", "MALIGNANT", "BENIGN", "BENIGN", "NORMAL", "NORMAL"]
    aucs = task_aucs(labels, [0.9, 0.8, 0.7, 0.1, 0.2, 0.3], n_bootstrap=50)
    assert aucs["malignant_vs_rest"]["auc"] == 1.0
    assert aucs["malignant_vs_benign"]["positives"] == 2 and aucs["malignant_vs_benign"]["negatives"] == 2
    assert aucs["abnormal_vs_normal"]["auc"] == pytest.approx(6 / 8)
    bins = calibration_bins([1, 0, 1, 0], [0.95, 0.05, 0.91, 0.12], bins=10)
    assert [b["count"] for b in bins] == [1, 1, 2] and bins[-1]["observed"] == 1.0


def test_it_scores_the_pointing_game_inside_the_lesion_circle():
    from inference.training.datasets import ImageRecord, Lesion
    from inference.training.evaluation import pointing_hit

    record = ImageRecord(
        image_id="x",
        path=Path("x.png"),
        patient_id="p",
        image_label="MALIGNANT",
        split="test",
        laterality="L",
        view="MLO",
        lesions=(Lesion(100.0, 200.0, 20.0, "MALIGNANT", "CIRC"),),
    )
    assert pointing_hit((110.0, 210.0), record, pathology="MALIGNANT") is True
    assert pointing_hit((130.0, 200.0), record, pathology="MALIGNANT") is False
    assert pointing_hit((100.0, 200.0), record, pathology="BENIGN") is None


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A tiny max-pooling Lite0 at 64 px with a card, as train_model writes them (no training)."""
    import keras

    from inference.serving.backbones import build_classifier
    from inference.serving.preprocessing import PREPROCESSING_VERSION

    keras.utils.set_random_seed(5)
    folder = tmp_path / "model"
    folder.mkdir()
    build_classifier(backbone="lite0", input_size=TINY, pooling="max").save(folder / "model.keras")
    card = {
        "name": "tiny-eval",
        "model_file": "model.keras",
        "serving": {
            "input_size": TINY,
            "threshold": 0.5,
            "calibration_scale": 1.0,
            "calibration_bias": 0.0,
            "preprocessing_version": PREPROCESSING_VERSION,
            "backbone": "lite0",
        },
        "validation": {"validation_ids": ["mdb001", "mdb002", "mdb003"], "final_model_saw_validation_images": True},
        "metrics": {"validation": {}, "test": None},
    }
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


@pytest.mark.model
def test_it_writes_the_evaluation_report_and_records_test_metrics_in_the_card(tmp_path, model_dir):
    root = make_synthetic_mias(tmp_path / "mini-mias")
    call_command(
        "evaluate_model",
        f"--model-dir={model_dir}",
        "--dataset=mini-mias",
        f"--data-path={root}",
        "--split=test",
        "--bootstrap=50",
        "--no-progress",
    )
    out = model_dir / "evaluation"
    for name in ("report.json", "REPORT.md", "roc.png", "precision_recall.png", "calibration.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["split"] == "test" and report["images"] == {"NORMAL": 2, "BENIGN": 1, "MALIGNANT": 1}
    assert report["operating_point"]["threshold"] == 0.5
    assert set(report["tasks"]) == {"malignant_vs_rest", "malignant_vs_benign", "abnormal_vs_normal"}
    assert report["pointing_game"]["malignant"]["images"] == 1
    assert report["benchmarks"]["bcsc"]["sensitivity"] == 0.869
    assert len(report["predictions"]) == 4
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["metrics"]["test"]["split"] == "test" and card["metrics"]["test"]["report"] == "evaluation"
    assert "Pointing game" in (out / "REPORT.md").read_text() or "pointing game" in (out / "REPORT.md").read_text()


@pytest.mark.model
def test_it_evaluates_the_validation_images_of_the_card_with_a_warning(tmp_path, model_dir):
    root = make_synthetic_mias(tmp_path / "mini-mias")
    call_command(
        "evaluate_model",
        f"--model-dir={model_dir}",
        "--dataset=mini-mias",
        f"--data-path={root}",
        "--split=val",
        "--bootstrap=20",
        "--example-figures",
        "--no-progress",
    )
    report = json.loads((model_dir / "evaluation-val" / "report.json").read_text())
    assert len(report["predictions"]) == 3
    assert (model_dir / "evaluation-val" / "pointing_examples.png").exists()  # mdb001 is malignant
    assert report["warnings"] and "refitted" in report["warnings"][0]
    assert json.loads((model_dir / "model_card.json").read_text())["metrics"]["test"] is None


def test_it_refuses_an_unknown_model_directory(tmp_path):
    with pytest.raises(CommandError, match="No model card"):
        call_command("evaluate_model", f"--model-dir={tmp_path}", "--dataset=mini-mias", "--split=test")


@pytest.mark.model
def test_it_evaluates_the_shipped_default_model_on_real_mini_mias_when_present(tmp_path):
    from inference.training.dataset_loading import data_dir

    root = data_dir() / "mini-mias"
    default = Path(__file__).resolve().parent.parent / "default_model"
    if not (root / "Info.txt").exists():
        pytest.skip(f"real mini-MIAS data not found at {root} (set MAMMO_DATA_DIR)")
    if not (default / "model.keras").exists():
        pytest.skip("default_model/model.keras is not there")
    from inference.serving.runtime import serving_model_load
    from inference.serving.spec import ServingSpec
    from inference.training.datasets import only_split, read_mini_mias
    from inference.training.evaluation import predict_records

    card = json.loads((default / "model_card.json").read_text())
    records = [r for r in only_split(read_mini_mias(root=root), "test") if r.image_label == "MALIGNANT"][:2]
    rows = predict_records(
        records, serving_model_load(ServingSpec.from_card(default / "model.keras", card)), progress=False
    )
    # The shipped report holds the same probabilities for these images: the figures re-run exactly.
    report = default.parent / "research" / "mini-mias-lite0-patch-v1" / "evaluation" / "report.json"
    shipped = {p["image_id"]: p for p in json.loads(report.read_text())["predictions"]}
    for row in rows:
        assert row["probability"] == pytest.approx(shipped[row["image_id"]]["probability"], abs=1e-4)
