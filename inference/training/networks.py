"""Training configuration and the networks training needs: the network being trained (bfloat16 compute where
the CPU has it), the served network (always float32), fast scorers, and hard-negative mining."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from inference.serving.backbones import HEAD_LAYERS, LOCATION_LAYER, LOGIT_LAYER, backbone_get, build_classifier
from inference.training.patches import PatchSampler, PreparedImage

logger = logging.getLogger(__name__)

LITE0_IMAGENET_WEIGHTS = (
    Path(__file__).resolve().parents[2] / "research" / "pretrained" / "efficientnet_lite0_imagenet.weights.h5"
)


@dataclass
class TrainConfig:
    backbone: str = "lite0"
    input_size: int = 512
    mode: str = "patch"  # 'patch' | 'whole'
    patch_size: int = 128
    pooling: str = "location"
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
    # 'none': every layer learns; 'body': the backbone is frozen (its batch norms in inference mode) and only the
    # head learns — a linear probe of the pretrained features, far fewer parameters to overfit ~80 lesions with.
    freeze: str = "none"

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
    if config.freeze not in ("none", "body"):
        raise TrainingError(f"Unknown freeze {config.freeze!r}: 'none' or 'body'.")
    if config.freeze == "body":
        head = {*HEAD_LAYERS, LOGIT_LAYER, "max_pool", "avg_pool", "probability"}
        for layer in model.layers:
            if layer.name not in head:
                layer.trainable = False
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
    """Batch -> (n, h, w) logits at every position of the last feature map: where in the image the network sees
    something suspicious. The 'location' head's own map; for the pooled heads, the Dense 'logit' layer applied at
    every position. Follows the model's current weights."""
    import keras
    import tensorflow as tf

    from inference.serving.gradcam import last_conv_layer

    if LOCATION_LAYER in [layer.name for layer in model.layers]:
        maps_model = keras.Model(model.inputs, model.get_layer(LOCATION_LAYER).output)

        @tf.function(reduce_retracing=True)
        def run_maps(batch):
            return maps_model(batch, training=False)[..., 0]

        return lambda batch: run_maps(tf.convert_to_tensor(batch, dtype=tf.float32)).numpy()

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


def score_images(
    score: Callable[[np.ndarray], np.ndarray],
    images: Sequence[PreparedImage],
    *,
    batch: int = 8,
    mirrored: bool = False,
):
    """Scores of the images' network inputs in batches; `mirrored`: of their vertical mirrors instead."""
    out = []
    for start in range(0, len(images), batch):
        inputs = [image.network_input() for image in images[start : start + batch]]
        out.append(score(np.stack([x[::-1] for x in inputs] if mirrored else inputs)))
    return np.concatenate(out) if out else np.zeros(0)
