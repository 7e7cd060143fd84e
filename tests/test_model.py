"""The model code: the EfficientNet builder, safe loading (.keras first, then .h5 full model, then .h5 weights),
Grad-CAM on any backbone, and a Grad-CAM that really localises (trained here on synthetic blobs)."""

from __future__ import annotations

import shutil

import h5py
import keras
import numpy as np
import pytest

from inference.serving.backbones import build_classifier
from inference.serving.gradcam import cam_model_build, last_conv_layer
from inference.serving.loading import ModelLoadError, load_classifier
from inference.serving.preprocessing import heatmap_to_original, preprocess

pytestmark = pytest.mark.model


@pytest.mark.parametrize(
    ("backbone", "conv_name"), [("b0", "top_activation"), ("b2", "top_activation"), ("b3", "top_activation")]
)
def test_it_builds_each_backbone_flat_with_a_findable_last_conv_layer(backbone, conv_name):
    model = build_classifier(backbone=backbone, input_size=64)
    assert model.input_shape == (None, 64, 64, 3)
    assert model.get_layer("logit").output.shape == (None, 1)
    assert last_conv_layer(model).name == conv_name
    logits, cams = cam_model_build(model).run(np.zeros((2, 64, 64, 3), np.float32))
    assert logits.shape == (2,) and cams.shape == (2, 2, 2)


def test_grad_cam_finds_the_last_conv_layer_of_a_network_it_has_never_seen():
    model = _small_cnn(48)
    assert last_conv_layer(model).name == "features"


def test_it_loads_keras_first_then_h5_model_then_h5_weights(tmp_path):
    keras.utils.set_random_seed(1)
    model = build_classifier(backbone="b0", input_size=64)
    probe = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    expected = model(probe).numpy()

    model.save(tmp_path / "full.h5")
    loaded = load_classifier(tmp_path / "full.h5", backbone="b0", input_size=64)
    np.testing.assert_allclose(loaded(probe).numpy(), expected, rtol=1e-4, atol=1e-5)

    # A weights-only .h5 (legacy Keras layout): loaded into the architecture built for the backbone.
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    with h5py.File(tmp_path / "weights.h5", "w") as handle:
        save_weights_to_hdf5_group(handle, model)
    loaded = load_classifier(tmp_path / "weights.h5", backbone="b0", input_size=64)
    np.testing.assert_allclose(loaded(probe).numpy(), expected, rtol=1e-4, atol=1e-5)

    # .keras is preferred over .h5 of the same name.
    other = build_classifier(backbone="b0", input_size=64)
    other.save(tmp_path / "pair.keras")
    shutil.copy(tmp_path / "full.h5", tmp_path / "pair.h5")
    loaded = load_classifier(tmp_path / "pair.h5", backbone="b0", input_size=64)
    np.testing.assert_allclose(loaded(probe).numpy(), other(probe).numpy(), rtol=1e-4, atol=1e-5)

    with pytest.raises(ModelLoadError):
        load_classifier(tmp_path / "missing.keras", backbone="b0", input_size=64)


def test_it_refuses_a_model_file_with_code_in_it(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2)(inputs)
    x = keras.layers.Conv2D(2, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.save(tmp_path / "evil.keras")
    with pytest.raises(ModelLoadError, match="(?i)unsafe|lambda|safe_mode"):
        load_classifier(tmp_path / "evil.keras", backbone="custom", input_size=8)


# ---- Grad-CAM localisation ------------------------------------------------------------------------------------

ROWS, COLS, INPUT, RADIUS = 160, 120, 96, 10


def _small_cnn(size: int):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.8)(x)  # few steps: let the moving statistics settle
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, keras.layers.Activation("sigmoid")(logit))


def _synthetic(rng: np.random.Generator, positive: bool) -> tuple[np.ndarray, tuple[int, int] | None]:
    """A 'breast' (textured half-ellipse against the left edge); positives carry a bright blob inside it."""
    y, x = np.mgrid[0:ROWS, 0:COLS]
    breast = ((y - ROWS / 2) / (ROWS * 0.45)) ** 2 + (x / (COLS * 0.8)) ** 2 <= 1
    image = np.where(breast, 0.35 + 0.08 * rng.standard_normal((ROWS, COLS)), 0.0).astype(np.float32)
    centre = None
    if positive:
        while True:
            cy, cx = int(rng.integers(25, ROWS - 25)), int(rng.integers(8, int(COLS * 0.6)))
            if breast[cy, cx]:
                break
        image += 0.5 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * (RADIUS / 2) ** 2)).astype(np.float32)
        centre = (cy, cx)
    return np.clip(image, 0, 1), centre


@pytest.mark.slow
def test_grad_cam_peaks_inside_the_blob_on_held_out_positives():
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    samples = [_synthetic(rng, positive=bool(i % 2)) for i in range(600)]
    tensors = np.stack([preprocess(img, input_size=INPUT).tensor for img, _ in samples])
    labels = np.array([centre is not None for _, centre in samples], np.float32)
    model = _small_cnn(INPUT)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    model.fit(tensors[:400], labels[:400], epochs=10, batch_size=32, verbose=0)
    from sklearn.metrics import roc_auc_score

    scores = model(tensors[400:], training=False).numpy().ravel()
    assert roc_auc_score(labels[400:], scores) > 0.95  # it learned the task; now, does it look at the blob?

    cam = cam_model_build(model)
    hits = total = 0
    for (image, centre), tensor in zip(samples[400:], tensors[400:], strict=True):
        if centre is None:
            continue
        _, cams = cam.run(tensor[None])
        geometry = preprocess(image, input_size=INPUT).geometry
        heatmap = heatmap_to_original(cams[0], geometry)
        peak = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        total += 1
        hits += (peak[0] - centre[0]) ** 2 + (peak[1] - centre[1]) ** 2 <= RADIUS**2
    assert total >= 90
    assert hits / total >= 0.9, f"Grad-CAM peak inside the blob for {hits}/{total} held-out positives"
