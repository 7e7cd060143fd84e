"""Measuring a density model on mini-MIAS through the platform's serving path (inference.density.api), one
prediction per woman from her two MLO images.

The NYU model needs four views and answers in BI-RADS a-d. Its mini-MIAS protocol has three parts, each chosen on
the train split only (`--split train` measures every candidate and records the choice in the card) and fixed
before the test split is opened:
- pseudo-exam: L-CC <- L-MLO and R-CC <- R-MLO (substitute_missing), the only way to give a four-view model a
  two-view woman without inventing pixels;
- input: the whole decoded image as the reference takes it, or the breast alone (background set to black);
- mapping a-d -> F/G/D: a = F, b + c = G, d = D, or a = F, b = G, c + d = D (BI-RADS c and d are "dense", and
  mini-MIAS D is "dense-glandular"); the category is the most probable of a-d, then mapped.
"""

from __future__ import annotations

import time

import numpy as np

from inference.training.density.agreement import agreement_summary
from inference.training.density.data import TISSUES, DensityWoman, decode_pixels

NYU_INPUTS = ("whole-image", "breast-only")
NYU_MAPPINGS = {"a=F, b+c=G, d=D": (0, 1, 1, 2), "a=F, b=G, c+d=D": (0, 1, 2, 2)}
DENSE = ("D",)


def breast_only(pixels: np.ndarray) -> np.ndarray:
    """Everything outside the platform's breast mask set to black (as the background of a digital mammogram)."""
    import cv2

    from inference.serving.preprocessing import breast_mask

    mask, _ = breast_mask(pixels)
    full = cv2.resize(mask.astype(np.uint8), (pixels.shape[1], pixels.shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.where(full.astype(bool), pixels, 0.0).astype(np.float32)


def predict_women(model, women: list[DensityWoman], *, inputs: tuple[str, ...] = ("whole-image",), progress=None):
    """{input variant: {'exam': (women, classes), 'breasts': (women, 2, classes)}} through model.predict."""
    out = {name: {"exam": [], "breasts": []} for name in inputs}
    started = time.monotonic()
    for index, woman in enumerate(women, start=1):
        pixels = {side: decode_pixels(woman.images[side]) for side in ("L", "R")}
        for name in inputs:
            shown = {side: (breast_only(p) if name == "breast-only" else p) for side, p in pixels.items()}
            result = model.predict({"L-MLO": shown["L"], "R-MLO": shown["R"]}, substitute_missing=True)
            out[name]["exam"].append([result.probabilities[c] for c in model.classes])
            out[name]["breasts"].append([[result.per_breast[s].probabilities[c] for c in model.classes] for s in "LR"])
        if progress and (index % 10 == 0 or index == len(women)):
            progress(f"{index}/{len(women)} women ({time.monotonic() - started:.0f} s)")
    return {name: {key: np.array(value) for key, value in parts.items()} for name, parts in out.items()}


def to_tissue(probabilities: np.ndarray, mapping: tuple[int, ...] | None) -> np.ndarray:
    """Most probable class, then through the a-d -> F/G/D mapping (None: already F/G/D)."""
    best = np.asarray(probabilities).argmax(axis=-1)
    return best if mapping is None else np.asarray(mapping)[best]


def summary(labels, predictions, clusters, *, n_bootstrap: int, seed: int) -> dict:
    return agreement_summary(
        labels, predictions, clusters=clusters, class_names=TISSUES, dense=DENSE, n_bootstrap=n_bootstrap, seed=seed
    )


def nyu_train_protocol(model, women: list[DensityWoman], *, n_bootstrap: int, seed: int, progress=None) -> dict:
    """Every input x mapping candidate on the train split's women; the chosen protocol (highest linear kappa,
    then accuracy). Only the train split may be passed."""
    if any(woman.images["L"].split != "train" for woman in women):
        raise ValueError("The NYU protocol is chosen on the train split only.")
    predictions = predict_women(model, women, inputs=NYU_INPUTS, progress=progress)
    labels = np.array([woman.label for woman in women])
    patients = [woman.patient_id for woman in women]
    candidates = {}
    for name in NYU_INPUTS:
        for mapping_name, mapping in NYU_MAPPINGS.items():
            figures = summary(
                labels, to_tissue(predictions[name]["exam"], mapping), patients, n_bootstrap=n_bootstrap, seed=seed
            )
            candidates[f"{name}; {mapping_name}"] = {"input": name, "mapping": mapping_name, **figures}
    best = max(candidates, key=lambda k: (candidates[k]["kappa_linear"], candidates[k]["accuracy"]))
    chosen = {"input": candidates[best]["input"], "mapping": candidates[best]["mapping"]}
    mean_probabilities = {
        name: dict(zip(model.classes, predictions[name]["exam"].mean(axis=0).round(4).tolist(), strict=True))
        for name in NYU_INPUTS
    }
    return {
        "split": "train",
        "women": len(women),
        "pseudo_exam": "L-CC <- L-MLO, R-CC <- R-MLO",
        "candidates": candidates,
        "chosen": chosen,
        "rule": "highest woman-level linear kappa on the train split, then accuracy",
        "mean_probabilities": mean_probabilities,
    }


def evaluate_women(
    model, women: list[DensityWoman], *, protocol: dict | None, n_bootstrap: int, seed: int, progress=None
) -> dict:
    """Woman-level figures (the card's criterion) and, for reference, per-breast (image) figures bootstrapped by
    woman. `protocol`: the NYU model's chosen input and mapping; None for the F/G/D model."""
    inputs = (protocol["input"],) if protocol else ("whole-image",)
    mapping = NYU_MAPPINGS[protocol["mapping"]] if protocol else None
    predictions = predict_women(model, women, inputs=inputs, progress=progress)[inputs[0]]
    labels = np.array([woman.label for woman in women])
    patients = [woman.patient_id for woman in women]
    exam = to_tissue(predictions["exam"], mapping)
    breasts = to_tissue(predictions["breasts"], mapping)  # (women, 2)
    rows = [
        {
            "patient": woman.patient_id,
            "images": {side: woman.images[side].image_id for side in ("L", "R")},
            "tissue": woman.tissue,
            "predicted": TISSUES[exam[i]],
            "probabilities": dict(zip(model.classes, np.round(predictions["exam"][i], 6).tolist(), strict=True)),
        }
        for i, woman in enumerate(women)
    ]
    return {
        "women": len(women),
        "woman_level": summary(labels, exam, patients, n_bootstrap=n_bootstrap, seed=seed),
        "breast_level": summary(
            np.repeat(labels, 2), breasts.ravel(), np.repeat(patients, 2), n_bootstrap=n_bootstrap, seed=seed
        ),
        "protocol": protocol,
        "predictions": rows,
    }
