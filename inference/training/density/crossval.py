"""Training the mini-MIAS density model: features of every train-split image, woman-grouped cross-validation of
each feature kind with the same read-out, the choice, and the final model.

Read-out: standardised features, multinomial logistic regression (scikit-learn, lbfgs), its inverse regularisation
C chosen per training fold by an inner woman-grouped cross-validation (log-loss) over C_GRID, so no figure is scored
on data that chose its C. A woman's probabilities are the mean over her two images (her label is one label).

Choice: the kind with the highest mean woman-level linearly weighted kappa over REPEATS repetitions of FOLDS-fold
cross-validation (ties: accuracy). Only the train split is read; the folds come from
inference.training.datasets.patient_kfold, which refuses sealed test records.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from inference.density.features import FEATURE_KINDS, LITE0_LAYERS, breast_quantiles
from inference.density.histogram import view_histogram
from inference.metrics import weighted_kappa
from inference.training.datasets import patient_kfold
from inference.training.density.data import TISSUES, DensityWoman, decode_pixels, image_rows

logger = logging.getLogger(__name__)
FOLDS = 5
REPEATS = 5
INNER_FOLDS = 4
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


@dataclass
class TrainingSet:
    women: list[DensityWoman]
    image_ids: list[str]
    patients: np.ndarray  # per image
    labels: np.ndarray  # per image, index into TISSUES
    features: dict[str, np.ndarray]  # kind -> (images, dimensions)
    records: list = field(default_factory=list)  # ImageRecord per image, for patient_kfold


def lite0_networks(weights):
    """One frozen Lite0 body with an averaged output per Lite0 feature kind (both kinds in one forward pass)."""
    import keras

    from inference.serving.backbones import efficientnet_lite0_body

    inputs = keras.Input(shape=(None, None, 3), name="image")
    body = efficientnet_lite0_body(inputs)
    body.load_weights(str(weights))
    outputs = [keras.layers.GlobalAveragePooling2D()(body.get_layer(LITE0_LAYERS[k]).output) for k in LITE0_LAYERS]
    return keras.Model(inputs, outputs)


def extract_features(women: list[DensityWoman], *, lite0_weights, progress=None) -> TrainingSet:
    """Every feature kind of every image, each image decoded once as serving decodes it."""
    from inference.density.features import LITE0_INPUT_SIZE
    from inference.serving.preprocessing import preprocess

    network = lite0_networks(lite0_weights)
    rows = image_rows(women)
    features: dict[str, list[np.ndarray]] = {kind: [] for kind in FEATURE_KINDS}
    started = time.monotonic()
    for index, (_, _, record) in enumerate(rows, start=1):
        pixels = decode_pixels(record)
        features["nyu-histogram"].append(view_histogram(pixels))
        features["breast-quantiles"].append(breast_quantiles(pixels))
        tensor = preprocess(pixels, input_size=LITE0_INPUT_SIZE).tensor[None]
        for kind, output in zip(LITE0_LAYERS, network(tensor, training=False), strict=True):
            features[kind].append(np.asarray(output, dtype=np.float64)[0])
        if progress and (index % 25 == 0 or index == len(rows)):
            progress(f"features: {index}/{len(rows)} images ({time.monotonic() - started:.0f} s)")
    return TrainingSet(
        women=women,
        image_ids=[record.image_id for _, _, record in rows],
        patients=np.array([woman.patient_id for woman, _, _ in rows]),
        labels=np.array([woman.label for woman, _, _ in rows]),
        features={kind: np.array(values) for kind, values in features.items()},
        records=[record for _, _, record in rows],
    )


def _readout(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def _folds(data: TrainingSet, index: np.ndarray, *, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Woman-grouped, tissue-stratified folds of the images `index` (positions in data)."""
    records = [data.records[i] for i in index]
    label_of = {data.records[i].image_id: TISSUES[data.labels[i]] for i in index}
    position = {record.image_id: i for i, record in zip(index, records, strict=True)}
    pairs = patient_kfold(records, k=k, seed=seed, label=lambda record: label_of[record.image_id])
    return [
        (np.array([position[r.image_id] for r in train]), np.array([position[r.image_id] for r in validation]))
        for train, validation in pairs
    ]


def fit_readout(data: TrainingSet, kind: str, index: np.ndarray, *, seed: int):
    """(fitted pipeline, chosen C) on the images `index`, C by inner grouped cross-validation (log-loss)."""
    x, y = data.features[kind], data.labels
    losses = []
    for c in C_GRID:
        loss = []
        for train, validation in _folds(data, index, k=INNER_FOLDS, seed=seed + 1000):
            probabilities = _readout(c).fit(x[train], y[train]).predict_proba(x[validation])
            loss.append(-np.mean(np.log(probabilities[np.arange(len(validation)), y[validation]] + 1e-12)))
        losses.append(float(np.mean(loss)))
    chosen = C_GRID[int(np.argmin(losses))]
    return _readout(chosen).fit(x[index], y[index]), chosen


def woman_level(data: TrainingSet, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(labels, mean probabilities, patient ids) per woman from per-image probabilities."""
    patients = sorted(set(data.patients))
    mean = np.array([probabilities[data.patients == p].mean(axis=0) for p in patients])
    labels = np.array([data.labels[data.patients == p][0] for p in patients])
    return labels, mean, patients


def cross_validate(data: TrainingSet, *, seed: int = 0, progress=None) -> dict:
    """Per kind: mean and spread over repeats of woman- and image-level accuracy and linear kappa, the C chosen
    per fold, and the first repeat's out-of-fold probabilities (kept for the card's record)."""
    everything = np.arange(len(data.labels))
    results = {}
    for kind in FEATURE_KINDS:
        started = time.monotonic()
        figures, chosen_c, first_repeat = [], [], None
        for repeat in range(REPEATS):
            out_of_fold = np.zeros((len(data.labels), len(TISSUES)))
            for train, validation in _folds(data, everything, k=FOLDS, seed=seed + repeat):
                model, c = fit_readout(data, kind, train, seed=seed + repeat)
                out_of_fold[validation] = model.predict_proba(data.features[kind][validation])
                chosen_c.append(c)
            labels, mean, _ = woman_level(data, out_of_fold)
            woman_pred, image_pred = mean.argmax(axis=1), out_of_fold.argmax(axis=1)
            figures.append(
                [
                    float(np.mean(labels == woman_pred)),
                    weighted_kappa(labels, woman_pred, classes=len(TISSUES)),
                    float(np.mean(data.labels == image_pred)),
                    weighted_kappa(data.labels, image_pred, classes=len(TISSUES)),
                ]
            )
            first_repeat = out_of_fold if first_repeat is None else first_repeat
        figures = np.array(figures)
        names = ("woman_accuracy", "woman_kappa_linear", "image_accuracy", "image_kappa_linear")
        results[kind] = {
            **{name: float(figures[:, i].mean()) for i, name in enumerate(names)},
            **{f"{name}_sd": float(figures[:, i].std(ddof=1)) for i, name in enumerate(names)},
            "per_repeat": figures.tolist(),
            "chosen_c": chosen_c,
            "dimensions": int(data.features[kind].shape[1]),
            "out_of_fold_first_repeat": first_repeat.tolist(),
        }
        if progress:
            progress(
                f"{kind}: woman accuracy {results[kind]['woman_accuracy']:.3f}, linear kappa "
                f"{results[kind]['woman_kappa_linear']:.3f} ({time.monotonic() - started:.0f} s)"
            )
    return results


def choose_kind(results: dict) -> str:
    return max(results, key=lambda kind: (results[kind]["woman_kappa_linear"], results[kind]["woman_accuracy"]))


def final_network(data: TrainingSet, kind: str, *, seed: int, lite0_weights):
    """The served network for `kind`, fitted on every train-split image, and its C. Lite0 kinds: image in
    (the body, frozen, then the read-out); histogram kinds: feature vector in."""
    from inference.density.features import lite0_feature_network
    from inference.density.mias_model import readout_layers, readout_network

    pipeline, c = fit_readout(data, kind, np.arange(len(data.labels)), seed=seed)
    scaler, regression = pipeline.named_steps["standardscaler"], pipeline.named_steps["logisticregression"]
    # scale_ ** 2, not var_: scikit-learn leaves a constant feature unscaled (scale 1), and so must Keras.
    params = (scaler.mean_, scaler.scale_**2, regression.coef_, regression.intercept_)
    if kind in LITE0_LAYERS:
        import keras

        body = lite0_feature_network(kind=kind, weights=lite0_weights)
        network = keras.Model(body.input, readout_layers(body.output, *params), name="mini_mias_density")
    else:
        network = readout_network(
            features=data.features[kind].shape[1],
            mean=params[0],
            variance=params[1],
            coef=params[2],
            intercept=params[3],
        )
    return network, pipeline, c
