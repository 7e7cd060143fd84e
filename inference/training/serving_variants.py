"""Ways to score a whole image with one trained network, for out-of-fold comparison (`compare_serving`).

- `served`: the platform's score (the model's own head on the whole preprocessed image).
- `mirror_tta`: test-time augmentation, the mean logit of the image and its vertical mirror (preprocessing puts
  the chest wall on the left, so only the vertical flip is a plausible image; training used it too).
- `patch_scan`: the network at its training patch size slid over the image (stride half a patch), the image's
  logit the maximum patch logit: each patch is seen with exactly the context it was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inference.training.patches import Augmentation, PreparedImage, crop_around


def fold_scores(images: Sequence[PreparedImage], weights: Path, meta: dict) -> dict[str, np.ndarray]:
    from inference.serving.backbones import build_classifier
    from inference.training.networks import logit_scorer, score_images

    served = build_classifier(
        backbone=meta["backbone"], input_size=meta["input_size"], pooling=meta["pooling"], dropout=meta["dropout"]
    )
    served.load_weights(weights)
    score = logit_scorer(served)
    plain = score_images(score, images)
    out = {"served": plain}
    mirrored = score_images(score, images, mirrored=True)
    out["mirror_tta"] = (plain + mirrored) / 2
    if meta.get("mode") == "patch":
        out["patch_scan"] = patch_scan(images, served, meta)
    return out


def patch_centres(side: int, patch: int) -> list[tuple[float, float]]:
    stride = max(1, patch // 2)
    starts = list(range(0, max(1, side - patch + 1), stride))
    if starts[-1] != side - patch:
        starts.append(max(0, side - patch))
    half = (patch - 1) / 2.0
    return [(r + half, c + half) for r in starts for c in starts]


def patch_scan(images: Sequence[PreparedImage], served, meta: dict) -> np.ndarray:
    from inference.serving.backbones import build_classifier
    from inference.training.networks import logit_scorer

    patch_model = build_classifier(
        backbone=meta["backbone"], input_size=meta["patch_size"], pooling=meta["pooling"], dropout=meta["dropout"]
    )
    patch_model.set_weights(served.get_weights())
    score = logit_scorer(patch_model)
    plain = Augmentation(enabled=False)
    out = []
    for image in images:
        centres = patch_centres(image.tensor.shape[0], meta["patch_size"])
        crops = np.stack(
            [
                crop_around(image.tensor, centre=c, size=meta["patch_size"], rng=None, augmentation=plain)
                for c in centres
            ]
        )
        batch = np.repeat(crops[..., None], 3, axis=3)
        out.append(max(score(batch[i : i + 64]).max() for i in range(0, len(batch), 64)))
    return np.asarray(out)
