"""Training: the data path (decode -> preprocess -> patches), the model builder options, and `train_model` end to
end on a tiny synthetic mini-MIAS tree (a bright blob is malignant). Never a full training run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.management import call_command

from inference.training.datasets import DatasetError, read_mini_mias

TINY = 64
SIDE = 128
# patient -> (label of the odd image, label of the even image); mini-MIAS pairs mdb(2k-1), mdb(2k) per woman.
PATIENTS = {
    "P1": ("MALIGNANT", "NORMAL", "train"),
    "P2": ("MALIGNANT", "NORMAL", "train"),
    "P3": ("BENIGN", "NORMAL", "train"),
    "P4": ("BENIGN", "NORMAL", "train"),
    "P5": ("MALIGNANT", "BENIGN", "train"),
    "P6": ("MALIGNANT", "BENIGN", "train"),
    "P7": ("MALIGNANT", "NORMAL", "test"),
    "P8": ("BENIGN", "NORMAL", "test"),
}


def synthetic_image(label: str, *, rng: np.random.Generator, centre: tuple[int, int], radius: int) -> np.ndarray:
    """A 'breast' (half disc against the left edge) with texture; malignant: a bright blob, benign: a faint one."""
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    breast = ((rows - SIDE / 2) / (SIDE * 0.45)) ** 2 + (cols / (SIDE * 0.6)) ** 2 <= 1
    image = np.where(breast, 0.35 + 0.08 * rng.standard_normal((SIDE, SIDE)), 0.0)
    if label != "NORMAL":
        blob = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * (radius / 2) ** 2))
        image = image + (0.55 if label == "MALIGNANT" else 0.15) * blob
    return np.clip(image, 0, 1)


def make_synthetic_mias(root: Path, *, seed: int = 0) -> Path:
    """A mini-MIAS tree (Info.txt, splits.csv, mdbNNN.png) of 16 images, 128 x 128, in `root`."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    info = ["Synthetic test data in the mini-MIAS layout", ""]
    splits = ["refnum,patient,image_label,split"]
    number = 0
    for patient, (first, second, split) in PATIENTS.items():
        for label in (first, second):
            number += 1
            refnum = f"mdb{number:03d}"
            centre = (int(rng.integers(40, 88)), int(rng.integers(20, 50)))
            radius = 8
            cv2.imwrite(
                str(root / f"{refnum}.png"),
                (synthetic_image(label, rng=rng, centre=centre, radius=radius) * 255).astype(np.uint8),
            )
            if label == "NORMAL":
                info.append(f"{refnum} F NORM")
            else:
                # MIAS coordinates: x = column, y from the bottom edge.
                info.append(f"{refnum} G CIRC {label[0]} {centre[1]} {SIDE - 1 - centre[0]} {radius}")
            splits.append(f"{refnum},{patient},{label},{split}")
    (root / "Info.txt").write_text("\n".join(info) + "\n")
    (root / "splits.csv").write_text("\n".join(splits) + "\n")
    return root


@pytest.fixture
def mias_root(tmp_path) -> Path:
    return make_synthetic_mias(tmp_path / "mini-mias")


def test_it_maps_lesion_centres_into_the_network_input(mias_root):
    from inference.serving.preprocessing import heatmap_to_original
    from inference.training.patches import prepare_image

    record = next(r for r in read_mini_mias(root=mias_root) if r.image_label == "MALIGNANT")
    image = prepare_image(record, input_size=TINY)
    (lesion,) = image.lesions
    # The blob is the brightest thing in the network input, at the mapped centre.
    peak = np.unravel_index(np.argmax(cv2.GaussianBlur(image.tensor, (5, 5), 0)), image.tensor.shape)
    assert abs(peak[0] - lesion.row) <= 2 and abs(peak[1] - lesion.col) <= 2
    # And the platform's inverse mapping takes that input position back to the annotated centre.
    cam = np.zeros((TINY, TINY), dtype=np.float32)
    cam[int(round(lesion.row)), int(round(lesion.col))] = 1.0
    back = heatmap_to_original(cam, image.geometry)
    row, col = np.unravel_index(np.argmax(back), back.shape)
    original = record.lesions[0]
    assert abs(row - original.row) <= 2 and abs(col - original.col) <= 2


def test_the_pointing_game_on_the_input_grid_hits_only_the_images_own_lesion(mias_root):
    from inference.training.patches import prepare_image
    from inference.training.trainer import pointing_on_input

    records = read_mini_mias(root=mias_root)
    malignant = prepare_image(next(r for r in records if r.image_label == "MALIGNANT"), input_size=TINY)
    normal = prepare_image(next(r for r in records if r.image_label == "NORMAL"), input_size=TINY)
    (lesion,) = malignant.lesions
    cells = 16  # a 16 x 16 location map: 4 input pixels per cell, less than the lesion's radius in the input
    assert lesion.radius >= 4
    on = np.zeros((cells, cells))
    on[int(lesion.row // 4), int(lesion.col // 4)] = 5.0
    off = np.zeros((cells, cells))
    off[(int(lesion.row // 4) + 8) % cells, (int(lesion.col // 4) + 8) % cells] = 5.0
    assert pointing_on_input(malignant, on) is True
    assert pointing_on_input(malignant, off) is False
    assert pointing_on_input(normal, on) is None  # nothing to point at


def test_it_cuts_patches_centred_where_asked():
    from inference.training.patches import Augmentation, crop_around

    image = np.zeros((64, 64), dtype=np.float32)
    image[20, 40] = 200.0
    patch = crop_around(image, centre=(20, 40), size=15, rng=np.random.default_rng(0), augmentation=Augmentation(False))
    assert patch.shape == (15, 15)
    assert patch[7, 7] == pytest.approx(200.0)
    assert patch.sum() == pytest.approx(200.0)


def test_it_samples_lesion_tissue_and_hard_negative_patches(mias_root):
    from inference.training.patches import Augmentation, PatchSampler, prepare_images

    images = prepare_images([r for r in read_mini_mias(root=mias_root) if r.split == "train"], input_size=TINY)
    sampler = PatchSampler(
        images=images, patch_size=32, augmentation=Augmentation(), lesion_patches=2, tissue_patches=1
    )
    lesion_image = next(image for image in images if image.lesions)
    lesion = lesion_image.lesions[0]
    sampler.hard_centres = {lesion_image.record.image_id: [(lesion.row, 63.0 - lesion.col)]}
    epoch = sampler.epoch(np.random.default_rng(0))
    assert epoch.inputs.shape[1:] == (32, 32, 3)
    assert epoch.counts["malignant"] == 2 * 4 and epoch.counts["benign"] == 2 * 4
    assert epoch.counts["hard_negative"] == 1
    assert epoch.labels.sum() == 8
    # Balanced class weights: both classes carry the same total weight.
    assert epoch.weights[epoch.labels == 1].sum() == pytest.approx(epoch.weights[epoch.labels == 0].sum())
    assert not sampler.away_from_lesions(lesion_image, lesion.row, lesion.col)


@pytest.mark.model
def test_it_builds_lite0_with_imagenet_weights_max_pooling_and_gradcam():
    from inference.serving.backbones import build_classifier
    from inference.serving.gradcam import cam_model_build
    from inference.training.trainer import LITE0_IMAGENET_WEIGHTS

    model = build_classifier(backbone="lite0", input_size=TINY, weights=LITE0_IMAGENET_WEIGHTS, pooling="max")
    assert model.get_layer("logit") is not None and model.get_layer("max_pool") is not None
    stem = model.get_layer("stem_conv").get_weights()[0]
    assert stem.shape == (3, 3, 3, 32) and np.abs(stem).max() > 0.1
    logits, cams = cam_model_build(model).run(np.full((2, TINY, TINY, 3), 128.0, dtype=np.float32))
    assert logits.shape == (2,) and cams.shape == (2, 2, 2)
    with pytest.raises(ValueError, match="pooling"):
        build_classifier(backbone="lite0", input_size=TINY, pooling="median")


@pytest.mark.model
def test_the_location_head_scores_a_patch_and_a_whole_image_the_same_way(tmp_path):
    """'location' head: the image's logit is the maximum of the per-position logits, so weights trained on patches
    score a whole image by its most suspicious patch (not by a mix of feature maxima from different places), and
    the heatmap peaks where that logit comes from. It survives a .keras round trip (safe mode)."""
    import keras

    from inference.serving.backbones import build_classifier
    from inference.serving.gradcam import cam_model_build, last_conv_layer
    from inference.serving.loading import load_classifier
    from inference.training.networks import location_scorer, logit_scorer
    from inference.training.trainer import LITE0_IMAGENET_WEIGHTS

    keras.utils.set_random_seed(3)
    patch_model = build_classifier(
        backbone="lite0", input_size=TINY // 2, weights=LITE0_IMAGENET_WEIGHTS, pooling="location"
    )
    whole = build_classifier(backbone="lite0", input_size=TINY * 2, pooling="location")
    whole.set_weights(patch_model.get_weights())  # every layer is size-independent
    assert last_conv_layer(whole).name not in ("location_logits", "head_dropout")

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(2, TINY * 2, TINY * 2, 3)).astype(np.float32)
    maps = location_scorer(whole)(images)
    logits = logit_scorer(whole)(images)
    assert maps.shape == (2, 4, 4)
    np.testing.assert_allclose(logits, maps.reshape(2, -1).max(axis=1), rtol=1e-5, atol=1e-5)

    cam_logits, cams = cam_model_build(whole).run(images)
    np.testing.assert_allclose(cam_logits, logits, rtol=1e-5, atol=1e-5)
    for cam, logit_map in zip(cams, maps, strict=True):
        assert np.unravel_index(cam.argmax(), cam.shape) == np.unravel_index(logit_map.argmax(), logit_map.shape)
        assert cam.min() == pytest.approx(0.0) and cam.max() == pytest.approx(1.0)

    whole.save(tmp_path / "model.keras")
    loaded = load_classifier(tmp_path / "model.keras", backbone="lite0", input_size=TINY * 2, pooling="location")
    np.testing.assert_allclose(logit_scorer(loaded)(images), logits, rtol=1e-5, atol=1e-5)


@pytest.mark.model
def test_freezing_the_body_leaves_only_the_head_to_learn():
    from inference.training.trainer import TrainConfig, TrainingError, training_model

    model = training_model(TrainConfig(input_size=TINY, patch_size=32, freeze="body"), steps_per_epoch=1)
    assert [layer.name for layer in model.layers if layer.trainable and layer.weights] == ["location_logits"]
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 1280 + 1  # one 1 x 1 conv on 1280 features
    with pytest.raises(TrainingError, match="freeze"):
        training_model(TrainConfig(input_size=TINY, patch_size=32, freeze="half"), steps_per_epoch=1)


def test_it_refuses_to_train_on_the_sealed_test_split(mias_root):
    from inference.training.trainer import TrainConfig, train

    records = read_mini_mias(root=mias_root)
    with pytest.raises(DatasetError, match="sealed test"):
        train(records, TrainConfig(input_size=TINY, patch_size=32, epochs=1, initial_weights="scratch"), progress=False)


def test_it_refuses_imagenet_weights_it_does_not_ship():
    from inference.training.trainer import TrainingError, initial_weights_path

    with pytest.raises(TrainingError, match="No ImageNet weights"):
        initial_weights_path("imagenet", backbone="b0")
    assert initial_weights_path("scratch", backbone="b0") is None


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.django_db
def test_it_trains_writes_the_card_and_registers_a_model_version(mias_root, tmp_path):
    from inference.models import ModelVersion

    out = tmp_path / "model"
    call_command(
        "train_model",
        "--dataset=mini-mias",
        f"--data-path={mias_root}",
        f"--out={out}",
        "--backbone=lite0",
        "--initial-weights=scratch",
        f"--image-size={TINY}",
        "--patch-size=32",
        "--epochs=1",
        "--batch-size=8",
        "--folds=2",
        "--lesion-patches=1",
        "--tissue-patches=1",
        "--hard-negatives=1",
        f"--keep-fold-weights={tmp_path / 'folds'}",
        "--register=tiny-trained",
        "--activate",
        "--confirm-unvalidated",
        "--no-progress",
    )
    card = json.loads((out / "model_card.json").read_text())
    assert (out / "model.keras").stat().st_size > 0
    assert set(card["serving"]) == {
        "input_size",
        "threshold",
        "calibration_scale",
        "calibration_bias",
        "preprocessing_version",
        "backbone",
        "pooling",
    }
    assert card["serving"]["pooling"] == "location"  # the patch-mode default
    assert card["serving"]["input_size"] == TINY and card["serving"]["backbone"] == "lite0"
    assert card["validation"]["scheme"] == "2-fold cross-validation"
    assert len(card["validation"]["validation_ids"]) == 12  # every train image once, no test image
    assert all(int(i[3:]) <= 12 for i in card["validation"]["validation_ids"])
    assert set(card["metrics"]["validation"]) == {"malignant_vs_rest", "malignant_vs_benign", "abnormal_vs_normal"}
    assert card["metrics"]["test"] is None
    # Out-of-fold pointing game over the located lesions of the validation images (P1/P2/P5/P6 malignant,
    # P3/P4/P5/P6 benign in the synthetic tree) and each fold's own-training-image AUC.
    pointing = card["validation"]["pointing"]
    assert pointing["malignant"]["images"] == 4 and pointing["benign"]["images"] == 4
    assert 0 <= pointing["malignant"]["hits"] <= 4
    assert len(card["validation"]["train_images_auc_per_fold"]) == 2
    assert "Out-of-fold pointing game" in (out / "MODEL_CARD.md").read_text()
    # The folds' weights let serving-side choices be compared out of fold, each image scored by the fold that did
    # not train on it.
    call_command(
        "compare_serving", f"--fold-weights={tmp_path / 'folds'}", "--dataset=mini-mias", f"--data-path={mias_root}"
    )
    variants = json.loads((tmp_path / "folds" / "serving_variants.json").read_text())
    assert variants["folds"] == 2 and variants["images"] == 12
    assert set(variants["variants"]) == {"served", "mirror_tta", "patch_scan"}
    assert variants["variants"]["served"]["malignant_vs_rest"]["auc"] == pytest.approx(
        card["metrics"]["validation"]["malignant_vs_rest"]["auc"], abs=1e-3
    )  # the same out-of-fold scores as training recorded
    call_command("compare_serving", f"--model-dir={out}", "--dataset=mini-mias", f"--data-path={mias_root}")
    own = json.loads((out / "serving_variants_train_images.json").read_text())
    assert own["in_sample"] is True and own["images"] == 12
    # Notes added later (experiments tried since) change the card's text, never its figures.
    from inference.training.model_card import card_notes_refresh

    notes = tmp_path / "notes.json"
    notes.write_text(json.dumps({"experiments": [{"experiment": "Z: tried later", "result": "no better"}]}))
    refreshed = card_notes_refresh(out, notes)
    assert refreshed["metrics"] == card["metrics"] and refreshed["serving"] == card["serving"]
    assert "Z: tried later" in (out / "MODEL_CARD.md").read_text()
    assert "train_model" in card["commands"]["train"] and card["code_commit"]
    markdown = (out / "MODEL_CARD.md").read_text()
    assert "NOT FOR CLINICAL USE" in markdown and "Suckling" in markdown
    version = ModelVersion.objects.get(name="tiny-trained")
    assert version.is_active and version.backbone == "lite0" and version.input_size == TINY
    assert version.threshold == pytest.approx(card["serving"]["threshold"])
    assert version.calibration_scale == pytest.approx(card["serving"]["calibration_scale"])
    assert version.card["name"] == "tiny-trained"


@pytest.mark.slow
@pytest.mark.model
def test_fixed_epochs_train_every_fold_and_the_refit_for_the_whole_budget(mias_root):
    from inference.training.trainer import TrainConfig, train

    records = [r for r in read_mini_mias(root=mias_root) if r.split == "train"]
    config = TrainConfig(
        backbone="lite0",
        input_size=TINY,
        mode="patch",
        patch_size=32,
        pooling="max",
        epochs=2,
        batch_size=8,
        initial_weights="scratch",
        validation="kfold",
        folds=2,
        patience=0,  # fixed epochs: no early stopping, nothing chosen on the validation fold
        lesion_patches=1,
        tissue_patches=1,
        hard_negatives=1,
    )
    outcome = train(records, config, progress=False)
    assert outcome.final_epochs == 2
    for fold in outcome.validation["per_fold"]:
        assert fold["epochs_run"] == 2 and fold["best_epoch"] == 2
        # the validation fold is scored once, with the final weights
        assert [("val_auc" in row) for row in fold["history"]] == [False, True]
    assert len(outcome.validation["predictions"]) == len(records)


@pytest.mark.slow
@pytest.mark.model
def test_it_trains_on_whole_images_with_a_holdout(tmp_path):
    from inference.training.datasets import read_image_folder
    from inference.training.trainer import TrainConfig, train

    rng = np.random.default_rng(1)
    for label, count in (("malignant", 4), ("benign", 4), ("normal", 4)):
        folder = tmp_path / "folder" / label
        folder.mkdir(parents=True)
        for i in range(count):
            pixels = synthetic_image(label.upper(), rng=rng, centre=(64, 30), radius=8)
            cv2.imwrite(str(folder / f"{label}{i}.png"), (pixels * 255).astype(np.uint8))
    records = read_image_folder(root=tmp_path / "folder")
    config = TrainConfig(
        backbone="lite0",
        input_size=TINY,
        mode="whole",
        pooling="avg",
        epochs=1,
        batch_size=4,
        initial_weights="scratch",
        validation="holdout",
        holdout_fraction=0.34,
    )
    outcome = train(records, config, progress=False)
    assert outcome.final_epochs == 1
    assert outcome.validation["final_model_saw_validation_images"] is False
    assert len(outcome.validation["predictions"]) == 3  # a third of each class, rounded
    assert outcome.model.input_shape == (None, TINY, TINY, 3)


def test_it_calibrates_logits_far_from_zero_without_diverging():
    from sklearn.linear_model import LogisticRegression

    from inference.serving.calibration import fit_platt

    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(180), np.ones(40)].astype(bool)
    logits = rng.normal(-6.0, 2.0, size=220) + 1.5 * labels  # like the default model's out-of-fold logits
    scale, bias = fit_platt(logits, labels)
    reference = LogisticRegression(C=1e6).fit(logits[:, None], labels)
    assert scale == pytest.approx(reference.coef_[0, 0], rel=0.15)
    assert bias == pytest.approx(reference.intercept_[0], abs=0.3)


def test_fit_platt_converges_on_tightly_clustered_logits_around_minus_five():
    from inference.serving.calibration import calibrated_probability, fit_platt

    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.2
    logits = -5.0 + 0.3 * rng.standard_normal(300) + 0.4 * labels  # the input that made plain Newton diverge
    scale, bias = fit_platt(logits, labels)
    assert np.isfinite(scale) and np.isfinite(bias)
    assert 0 < scale < 50
    probabilities = calibrated_probability(logits, scale=scale, bias=bias)
    assert probabilities.mean() == pytest.approx(labels.mean(), abs=0.02)  # a fitted logistic model matches the rate
    # the gradient of Platt's smoothed log loss vanishes at the returned coefficients (mapped back to raw logits)
    positives, negatives = labels.sum(), (~labels).sum()
    targets = np.where(labels, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    assert abs(np.sum((probabilities - targets) * logits)) < 1e-3
    assert abs(np.sum(probabilities - targets)) < 1e-3


def test_fit_platt_stays_finite_on_perfectly_separable_data():
    from inference.serving.calibration import fit_platt

    logits = np.r_[np.full(10, -6.0), np.full(10, -4.0)]
    labels = np.r_[np.zeros(10), np.ones(10)]
    scale, bias = fit_platt(logits, labels)
    assert np.isfinite(scale) and np.isfinite(bias)
    # Platt's smoothed targets (11/12 and 1/12) make the optimum finite: logit(1/12) at -6, logit(11/12) at -4.
    assert scale * -6.0 + bias == pytest.approx(np.log(1 / 11), abs=1e-4)
    assert scale * -4.0 + bias == pytest.approx(np.log(11), abs=1e-4)
    separated = np.r_[np.linspace(-9, -7, 50), np.linspace(-3, -1, 50)]
    scale, bias = fit_platt(separated, np.r_[np.zeros(50), np.ones(50)])
    assert np.isfinite(scale) and np.isfinite(bias) and scale > 0
    assert fit_platt(np.full(4, -5.0), [0, 1, 0, 1]) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert fit_platt([-5.0, -4.0], [1, 1]) == (1.0, 0.0)
