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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from inference.backbones import LOGIT_LAYER, backbone_get, build_classifier
from inference.calibration import calibrated_probability, fit_platt
from inference.datasets import DatasetError, ImageRecord, patient_holdout, patient_kfold
from inference.metrics import choose_operating_point, task_aucs
from inference.patches import Augmentation, PatchSampler, PreparedImage, WholeImageSampler, prepare_images

logger = logging.getLogger(__name__)

LITE0_IMAGENET_WEIGHTS = (
    Path(__file__).resolve().parent.parent / "default_model" / "efficientnet_lite0_imagenet.weights.h5"
)


@dataclass
class TrainConfig:
    backbone: str = "lite0"
    input_size: int = 512
    mode: str = "patch"  # 'patch' | 'whole'
    patch_size: int = 128
    pooling: str = "max"
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    dropout: float = 0.3
    initial_weights: str = "imagenet"  # 'scratch' | 'imagenet' (shipped Lite0) | a local Keras weights file
    augment: bool = True
    class_weighting: bool = True
    patience: int = 6
    min_epochs: int = 3
    validation: str = "kfold"  # 'kfold' | 'holdout'
    folds: int = 5
    holdout_fraction: float = 0.2
    seed: int = 0
    threshold_method: str = "sensitivity"
    target_sensitivity: float = 0.85
    lesion_patches: int = 4
    tissue_patches: int = 2
    hard_negatives: int = 2  # per image and epoch, mined with the current network (patch mode)
    mine_fraction: float = 0.5  # of the training images re-mined after each epoch (the rest keep theirs)
    precision: str = "auto"  # 'auto' (bfloat16 compute where the CPU has it), 'mixed_bfloat16' or 'float32'

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def train_size(self) -> int:
        return self.patch_size if self.mode == "patch" else self.input_size


class TrainingError(Exception):
    pass


def initial_weights_path(spec: str, *, backbone: str) -> Path | None:
    """'scratch' -> None; 'imagenet' -> the shipped converted weights (EfficientNet-Lite0 only); else a file."""
    if spec == "scratch":
        return None
    if spec == "imagenet":
        if backbone_get(backbone).key != "lite0":
            raise TrainingError(
                f"No ImageNet weights ship for {backbone} (nothing can be downloaded here): use --backbone lite0, "
                "'scratch', or the path of a local Keras weights file for this backbone's body."
            )
        if not LITE0_IMAGENET_WEIGHTS.exists():
            raise TrainingError(f"The shipped Lite0 weights are missing: {LITE0_IMAGENET_WEIGHTS}")
        return LITE0_IMAGENET_WEIGHTS
    path = Path(spec)
    if not path.is_file():
        raise TrainingError(f"Initial weights file not found: {path}")
    return path


# ---- models -----------------------------------------------------------------------------------------------------


def cpu_has_bfloat16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def training_precision(config: TrainConfig) -> str:
    if config.precision == "auto":
        return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    if config.precision not in ("mixed_bfloat16", "float32"):
        raise TrainingError(f"Unknown precision {config.precision!r}.")
    return config.precision


def training_model(config: TrainConfig, *, steps_per_epoch: int):
    """The network being trained. bfloat16 compute (float32 weights) halves the time on CPUs with AMX/AVX512-BF16;
    the served model is always float32 and gets these weights."""
    import keras

    keras.mixed_precision.set_global_policy(training_precision(config))
    try:
        model = build_classifier(
            backbone=config.backbone,
            input_size=config.train_size,
            weights=initial_weights_path(config.initial_weights, backbone=config.backbone),
            dropout=config.dropout,
            pooling=config.pooling,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # Cosine decay over the full epoch budget; the refit on all data follows the same schedule and stops early.
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(1, config.epochs * steps_per_epoch), alpha=0.05
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay),
        loss=keras.losses.BinaryCrossentropy(),
        weighted_metrics=[keras.metrics.AUC(name="auc")],
    )
    return model


def serving_model(config: TrainConfig):
    """The model the platform serves: whole preprocessed image in, one probability out."""
    return build_classifier(
        backbone=config.backbone, input_size=config.input_size, dropout=config.dropout, pooling=config.pooling
    )


def logit_scorer(model) -> Callable[[np.ndarray], np.ndarray]:
    """Batch of network inputs -> logits, through a traced call (no model.predict per batch)."""
    import keras
    import tensorflow as tf

    logits_model = keras.Model(model.inputs, model.get_layer(LOGIT_LAYER).output)

    @tf.function(reduce_retracing=True)
    def run(batch):
        return tf.reshape(logits_model(batch, training=False), [-1])

    def score(batch: np.ndarray) -> np.ndarray:
        return run(tf.convert_to_tensor(batch, dtype=tf.float32)).numpy().astype(np.float64)

    return score


def location_scorer(model) -> Callable[[np.ndarray], np.ndarray]:
    """Batch -> (n, h, w) logits of the Dense 'logit' layer applied at every position of the last feature map:
    where in the image the network sees something suspicious. Follows the model's current weights."""
    import keras
    import tensorflow as tf

    from inference.gradcam import last_conv_layer

    features_model = keras.Model(model.inputs, last_conv_layer(model).output)
    dense = model.get_layer(LOGIT_LAYER)

    @tf.function(reduce_retracing=True)
    def run(batch):
        features = features_model(batch, training=False)
        return tf.squeeze(tf.tensordot(features, dense.kernel, axes=1) + dense.bias, axis=-1)

    def score(batch: np.ndarray) -> np.ndarray:
        return run(tf.convert_to_tensor(batch, dtype=tf.float32)).numpy()

    return score


def mine_hard_negatives(
    sampler: PatchSampler,
    score: Callable[[np.ndarray], np.ndarray],
    *,
    per_image: int,
    fraction: float = 1.0,
    rng: np.random.Generator | None = None,
) -> None:
    """Update the sampler's hard negatives: per image, the highest-scoring feature-map positions that are clear of
    every lesion and of each other (half a patch apart). With fraction < 1 a random share of the images is
    re-mined (the others keep their last ones), which saves time on a slow machine."""
    usable = sampler.usable()
    if fraction < 1 and rng is not None:
        keep = max(1, int(round(fraction * len(usable))))
        usable = [usable[i] for i in sorted(rng.choice(len(usable), size=keep, replace=False))]
    hard = dict(sampler.hard_centres)
    for start in range(0, len(usable), 8):
        chunk = usable[start : start + 8]
        maps = score(np.stack([image.network_input() for image in chunk]))
        for image, logit_map in zip(chunk, maps, strict=True):
            stride = image.tensor.shape[0] / logit_map.shape[0]
            picked: list[tuple[float, float]] = []
            for flat in np.argsort(logit_map, axis=None)[::-1]:
                i, j = np.unravel_index(flat, logit_map.shape)
                row, col = (i + 0.5) * stride - 0.5, (j + 0.5) * stride - 0.5
                if not sampler.away_from_lesions(image, row, col):
                    continue
                if any(abs(row - r) + abs(col - c) < sampler.patch_size / 2 for r, c in picked):
                    continue
                picked.append((row, col))
                if len(picked) == per_image:
                    break
            hard[image.record.image_id] = picked
    sampler.hard_centres = hard


def score_images(score: Callable[[np.ndarray], np.ndarray], images: Sequence[PreparedImage], *, batch: int = 8):
    out = []
    for start in range(0, len(images), batch):
        out.append(score(np.stack([image.network_input() for image in images[start : start + batch]])))
    return np.concatenate(out) if out else np.zeros(0)


# ---- one training run -------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    weights: list  # of the chosen epoch
    epochs_run: int
    best_epoch: int  # 1-based; the last epoch when there is no validation
    history: list[dict] = field(default_factory=list)
    validation_logits: np.ndarray | None = None  # whole-image logits of the validation images at best_epoch


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
    """Train one network; with validation images, keep the epoch of best whole-image validation AUC
    (malignant vs rest) and stop after `patience` epochs without improvement."""
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
    locations = location_scorer(served) if mining else None
    labels = np.array([image.label for image in validation_images])
    best = RunResult(weights=model.get_weights(), epochs_run=0, best_epoch=0)
    best_auc, since_best = -np.inf, 0
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
        if score is not None:
            logits = score_images(score, validation_images)
            row["val_auc"] = roc_auc(labels, logits) if 0 < labels.sum() < len(labels) else float("nan")
            postfix["val_auc"] = f"{row['val_auc']:.3f}"
            improved = np.isfinite(row["val_auc"]) and row["val_auc"] > best_auc
            if improved or epoch <= 1:
                best_auc = row["val_auc"] if np.isfinite(row["val_auc"]) else best_auc
                best.weights, best.best_epoch, best.validation_logits = model.get_weights(), epoch, logits
                since_best = 0
            else:
                since_best += 1
        best.history.append(row)
        bar.set_postfix(postfix)
        best.epochs_run = epoch
        if score is not None and since_best >= config.patience and epoch >= config.min_epochs:
            break
    if score is None:
        best.weights, best.best_epoch = model.get_weights(), best.epochs_run
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


def train(
    records: Sequence[ImageRecord], config: TrainConfig, *, progress: bool = True, refit: bool = True
) -> TrainingOutcome:
    """Validate (k-fold or hold-out, grouped by patient), calibrate and choose the threshold on the validation
    predictions, and produce the served model. `records` must all be from the dataset's train split."""
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
        folds.append({"fold": fold, "best_epoch": run.best_epoch, "epochs_run": run.epochs_run, "history": run.history})
        for record, logit in zip(fold_val, run.validation_logits, strict=True):
            predictions.append(
                {
                    "image_id": record.image_id,
                    "patient_id": record.patient_id,
                    "label": record.image_label,
                    "split": record.split,
                    "fold": fold,
                    "logit": float(logit),
                }
            )

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

    if config.validation == "kfold" and refit:
        # Refit on every training image for the median best epoch of the folds (no early stopping possible).
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
