"""Training: patient-grouped validation, early stopping on validation AUC, Platt calibration and the operating
point on validation (out-of-fold) predictions, then the served model.

The served model is always `build_classifier(..., input_size=S)`: input `preprocess(pixels, input_size=S).tensor`,
one sigmoid output behind the Dense 'logit' layer, so the platform's serving and Grad-CAM run it unchanged. In
'patch' mode the same network is trained on patches cut at the served pixel scale and then scores the whole image
(global max pooling); validation always scores whole images exactly as serving does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.metrics import choose_operating_point, task_aucs
from inference.serving.calibration import calibrated_probability, fit_platt
from inference.training.datasets import DatasetError, ImageRecord, patient_holdout, patient_kfold
from inference.training.networks import (  # noqa: F401  (re-exported: the commands and tests import them from here)
    LITE0_IMAGENET_WEIGHTS,
    TrainConfig,
    TrainingError,
    initial_weights_path,
    location_scorer,
    logit_scorer,
    mine_hard_negatives,
    score_images,
    serving_model,
    training_model,
)
from inference.training.patches import Augmentation, PatchSampler, PreparedImage, WholeImageSampler, prepare_images

logger = logging.getLogger(__name__)

# ---- one training run -------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    weights: list  # of the chosen epoch
    epochs_run: int
    best_epoch: int  # 1-based; the last epoch when there is no validation
    history: list[dict] = field(default_factory=list)
    validation_logits: np.ndarray | None = None  # whole-image logits of the validation images at best_epoch
    # Per validation image at best_epoch: is the most suspicious position inside a lesion of the image's own
    # pathology (the pointing game of inference.training.evaluation, on the network input's grid)? None: no located
    # lesion.
    validation_pointing: list | None = None
    # Diagnostic: whole-image AUC (malignant vs rest) of the fold's own training images with the kept weights.
    train_images_auc: float | None = None


def pointing_on_input(image: PreparedImage, logit_map: np.ndarray) -> bool | None:
    """The pointing game on the network input: is the centre of the highest-scoring feature-map cell within the
    radius of a lesion whose pathology is the image's label? None when the image has no such located lesion."""
    malignant = image.record.image_label == "MALIGNANT"
    circles = [lesion for lesion in image.lesions if lesion.malignant == malignant]
    if image.record.image_label == "NORMAL" or not circles:
        return None
    i, j = np.unravel_index(int(np.argmax(logit_map)), logit_map.shape)
    stride = image.tensor.shape[0] / logit_map.shape[0]
    row, col = (i + 0.5) * stride - 0.5, (j + 0.5) * stride - 0.5
    return any(np.hypot(row - c.row, col - c.col) <= c.radius for c in circles)


def sampler_for(images: Sequence[PreparedImage], config: TrainConfig):
    augmentation = Augmentation(enabled=config.augment)
    if config.mode == "patch":
        return PatchSampler(
            images=images,
            patch_size=config.patch_size,
            augmentation=augmentation,
            balanced=config.class_weighting,
            lesion_patches=config.lesion_patches,
            tissue_patches=config.tissue_patches,
        )
    if config.mode == "whole":
        return WholeImageSampler(images=images, augmentation=augmentation, balanced=config.class_weighting)
    raise TrainingError(f"Unknown training mode {config.mode!r}.")


def train_run(
    train_images: Sequence[PreparedImage],
    validation_images: Sequence[PreparedImage],
    config: TrainConfig,
    *,
    epochs: int,
    seed: int,
    description: str,
    progress: bool = True,
) -> RunResult:
    """Train one network. With `config.patience` > 0 and validation images, keep the epoch of best whole-image
    validation AUC (malignant vs rest) and stop after `patience` epochs without improvement. With patience <= 0
    (fixed epochs) train exactly `epochs` epochs, score the validation images once with the final weights and keep
    those: nothing is chosen on the validation fold, so its predictions are honest out-of-fold predictions."""
    import keras
    from tqdm import tqdm

    from inference.metrics import roc_auc

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    sampler = sampler_for(train_images, config)
    first = sampler.epoch(rng)
    steps = int(np.ceil(len(first.labels) / config.batch_size))
    model = training_model(config, steps_per_epoch=steps)
    mining = isinstance(sampler, PatchSampler) and config.hard_negatives > 0
    served = serving_model(config) if validation_images or mining else None
    score = logit_scorer(served) if validation_images else None
    locations = location_scorer(served) if (mining or validation_images) and config.mode == "patch" else None
    labels = np.array([image.label for image in validation_images])
    best = RunResult(weights=model.get_weights(), epochs_run=0, best_epoch=0)
    best_auc, since_best = -np.inf, 0
    fixed = config.patience <= 0
    bar = tqdm(range(1, epochs + 1), desc=description, unit="epoch", disable=not progress, leave=True)
    for epoch in bar:
        data = first if epoch == 1 else sampler.epoch(rng)
        fitted = model.fit(
            data.inputs,
            data.labels,
            sample_weight=data.weights,
            batch_size=config.batch_size,
            epochs=1,
            shuffle=True,
            verbose=0,
        )
        row = {
            "epoch": epoch,
            "loss": float(fitted.history["loss"][-1]),
            "train_auc": float(fitted.history["auc"][-1]),
            "samples": len(data.labels),
        }
        postfix = {"loss": f"{row['loss']:.3f}", "auc": f"{row['train_auc']:.3f}"}
        row.update({f"n_{kind}": count for kind, count in data.counts.items()})
        if served is not None:
            served.set_weights(model.get_weights())
        if mining and epoch < epochs:
            fraction = 1.0 if epoch == 1 else config.mine_fraction
            mine_hard_negatives(sampler, locations, per_image=config.hard_negatives, fraction=fraction, rng=rng)
        if score is not None and (not fixed or epoch == epochs):
            logits = score_images(score, validation_images)
            row["val_auc"] = roc_auc(labels, logits) if 0 < labels.sum() < len(labels) else float("nan")
            postfix["val_auc"] = f"{row['val_auc']:.3f}"
            improved = np.isfinite(row["val_auc"]) and row["val_auc"] > best_auc
            if improved or epoch <= 1 or fixed:
                best_auc = row["val_auc"] if np.isfinite(row["val_auc"]) else best_auc
                best.weights, best.best_epoch, best.validation_logits = model.get_weights(), epoch, logits
                since_best = 0
            else:
                since_best += 1
        best.history.append(row)
        bar.set_postfix(postfix)
        best.epochs_run = epoch
        if score is not None and not fixed and since_best >= config.patience and epoch >= config.min_epochs:
            break
    if score is None:
        best.weights, best.best_epoch = model.get_weights(), best.epochs_run
    if validation_images and locations is not None:
        served.set_weights(best.weights)
        maps = score_images(locations, validation_images)
        best.validation_pointing = [pointing_on_input(i, m) for i, m in zip(validation_images, maps, strict=True)]
        train_labels = np.array([image.label for image in train_images])
        if 0 < train_labels.sum() < len(train_labels):
            best.train_images_auc = roc_auc(train_labels, score_images(score, train_images))
    keras.backend.clear_session(free_memory=False)
    return best


# ---- the whole procedure ----------------------------------------------------------------------------------------


@dataclass
class TrainingOutcome:
    model: object  # the served Keras model, weights set
    config: TrainConfig
    validation: dict  # scheme, folds, per-image out-of-fold predictions, metrics
    calibration: tuple[float, float]
    operating_point: dict
    final_epochs: int
    seconds: float
    train_counts: dict


def calibrate_and_choose(predictions: list[dict], config: TrainConfig):
    """Platt calibration and the operating point from validation predictions (each with 'logit', 'label' and
    'split'); adds 'probability' to each. Returns ((scale, bias), OperatingPoint)."""
    logits = np.array([p["logit"] for p in predictions])
    malignant = np.array([p["label"] == "MALIGNANT" for p in predictions])
    scale, bias = fit_platt(logits, malignant)
    if scale <= 0:
        logger.warning("Platt scaling gave a non-positive slope (%.3f): the validation ranking is inverted.", scale)
    probabilities = calibrated_probability(logits, scale=scale, bias=bias)
    for prediction, probability in zip(predictions, probabilities, strict=True):
        prediction["probability"] = float(probability)
    point = choose_operating_point(
        malignant,
        probabilities,
        splits=[p["split"] for p in predictions],
        method=config.threshold_method,
        target_sensitivity=config.target_sensitivity,
    )
    return (scale, bias), point


def train(
    records: Sequence[ImageRecord],
    config: TrainConfig,
    *,
    progress: bool = True,
    refit: bool = True,
    fold_weights_dir: Path | None = None,
) -> TrainingOutcome:
    """Validate (k-fold or hold-out, grouped by patient), calibrate and choose the threshold on the validation
    predictions, and produce the served model. `records` must all be from the dataset's train split.
    `fold_weights_dir`: keep each fold's served weights there (`fold1.weights.h5`, ...) with its validation ids,
    so serving-side choices (test-time augmentation, scanning) can be compared out of fold without retraining."""
    started = time.perf_counter()
    sealed = [record.image_id for record in records if record.split == "test"]
    if sealed:
        raise DatasetError(f"Training was given {len(sealed)} image(s) of the sealed test split, e.g. {sealed[:3]}.")
    if config.mode == "patch" and not any(record.lesions and record.lesions[0].row is not None for record in records):
        raise TrainingError("Patch training needs lesion locations; this dataset has none (use --mode whole).")
    images = prepare_images(records, input_size=config.input_size, progress=progress)
    by_id = {image.record.image_id: image for image in images}

    if config.validation == "kfold":
        splits = patient_kfold(records, k=config.folds, seed=config.seed)
    elif config.validation == "holdout":
        splits = [patient_holdout(records, fraction=config.holdout_fraction, seed=config.seed)]
    else:
        raise TrainingError(f"Unknown validation scheme {config.validation!r}.")

    predictions: list[dict] = []
    folds = []
    last_run = None
    for fold, (fold_train, fold_val) in enumerate(splits):
        run = train_run(
            [by_id[r.image_id] for r in fold_train],
            [by_id[r.image_id] for r in fold_val],
            config,
            epochs=config.epochs,
            seed=config.seed + fold,
            description=f"fold {fold + 1}/{len(splits)}",
            progress=progress,
        )
        last_run = run
        folds.append(
            {
                "fold": fold,
                "best_epoch": run.best_epoch,
                "epochs_run": run.epochs_run,
                "history": run.history,
                "train_images_auc": run.train_images_auc,
            }
        )
        if fold_weights_dir is not None:
            _fold_weights_save(Path(fold_weights_dir), fold, run.weights, fold_val, config)
        pointing = run.validation_pointing or [None] * len(fold_val)
        for record, logit, hit in zip(fold_val, run.validation_logits, pointing, strict=True):
            predictions.append(
                {
                    "image_id": record.image_id,
                    "patient_id": record.patient_id,
                    "label": record.image_label,
                    "split": record.split,
                    "fold": fold,
                    "logit": float(logit),
                    "pointing_hit": hit,
                }
            )

    (scale, bias), point = calibrate_and_choose(predictions, config)
    logits = np.array([p["logit"] for p in predictions])

    if config.validation == "kfold" and refit:
        # Refit on every training image: for the fixed epoch budget of the folds (patience <= 0), else for the
        # median best epoch of the folds (no early stopping possible).
        if config.patience <= 0:
            final_epochs = config.epochs
        else:
            final_epochs = max(1, int(np.median([f["best_epoch"] for f in folds])))
        final = train_run(
            images, [], config, epochs=final_epochs, seed=config.seed + 100, description="final", progress=progress
        )
        final_weights = final.weights
    else:
        final_epochs, final_weights = last_run.best_epoch, last_run.weights
    served = serving_model(config)
    served.set_weights(final_weights)

    validation = {
        "scheme": config.validation,
        "folds": len(splits),
        "grouped_by": "patient",
        "per_fold": folds,
        "predictions": predictions,
        "metrics": task_aucs([p["label"] for p in predictions], logits, seed=config.seed),
        "pointing": validation_pointing(predictions),
        "validation_ids": sorted(p["image_id"] for p in predictions),
        "final_model_saw_validation_images": config.validation == "kfold",
    }
    counts = {label: sum(1 for r in records if r.image_label == label) for label in ("NORMAL", "BENIGN", "MALIGNANT")}
    return TrainingOutcome(
        model=served,
        config=config,
        validation=validation,
        calibration=(scale, bias),
        operating_point=point.as_dict(),
        final_epochs=final_epochs,
        seconds=time.perf_counter() - started,
        train_counts=counts,
    )


def _fold_weights_save(folder: Path, fold: int, weights: list, validation: Sequence[ImageRecord], config) -> None:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    model = serving_model(config)
    model.set_weights(weights)
    model.save_weights(folder / f"fold{fold + 1}.weights.h5")
    ids = [record.image_id for record in validation]
    (folder / f"fold{fold + 1}.validation.json").write_text(json.dumps({"validation_ids": ids, **config.as_dict()}))


def validation_pointing(predictions: list[dict]) -> dict:
    """Out-of-fold pointing game per label (malignant, benign): hits / images with a located lesion."""
    out = {}
    for label in ("MALIGNANT", "BENIGN"):
        scored = [p["pointing_hit"] for p in predictions if p["label"] == label and p.get("pointing_hit") is not None]
        out[label.lower()] = {
            "hits": int(sum(scored)),
            "images": len(scored),
            "rate": (sum(scored) / len(scored)) if scored else None,
        }
    return out


def recalibrate_model_dir(model_dir: Path) -> dict:
    """Fit the calibration and choose the threshold again from `<model_dir>/validation_predictions.json` (the
    out-of-fold predictions train_model saved) with this code, and update the card's serving block. Used once for
    the default model after the calibration fix (see calibration.fit_platt); the weights are not touched."""
    import json

    from inference.training.model_card import write_card

    model_dir = Path(model_dir)
    card = json.loads((model_dir / "model_card.json").read_text())
    predictions = json.loads((model_dir / "validation_predictions.json").read_text())
    config = TrainConfig(**{k: v for k, v in card["training"].items() if k in TrainConfig.__dataclass_fields__})
    (scale, bias), point = calibrate_and_choose(predictions, config)
    card["serving"].update({"threshold": point.threshold, "calibration_scale": scale, "calibration_bias": bias})
    card["calibration"].update({"scale": scale, "bias": bias})
    card["threshold"].update({"value": point.threshold, "validation_operating_point": point.as_dict()})
    card["metrics"]["test"] = None  # a new operating point needs a new evaluation
    (model_dir / "validation_predictions.json").write_text(json.dumps(predictions, indent=1) + "\n")
    write_card(card, model_dir)
    return card
