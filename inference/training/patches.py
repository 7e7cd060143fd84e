"""Training data for the classifier: decoded, preprocessed images in memory, and the per-epoch samplers.

Every image is decoded by imaging.decoding and prepared by inference.serving.preprocessing.preprocess, exactly as the
platform serves it; lesion centres are mapped into the network input's coordinates with the same geometry.

Two samplers make one epoch of (inputs, labels, weights):
- `PatchSampler`: lesion-centred patches and patches of tissue away from lesions, cut from the preprocessed image
  at the served pixel scale. A fully convolutional network trained on them with global max pooling can then
  score the whole preprocessed image in one pass (its most suspicious region decides).
- `WholeImageSampler`: the whole preprocessed images (for datasets without lesion locations).
Both apply the same augmentation: small rotations, shifts and scale changes, vertical flips, and intensity
(gamma and contrast). No left-right flip: preprocessing puts the chest wall on the left of every image.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from inference.serving.preprocessing import Geometry, preprocess
from inference.training.datasets import ImageRecord

logger = logging.getLogger(__name__)

POSITIVE_LABEL = "MALIGNANT"  # the served probability is the probability of malignancy


@dataclass(frozen=True)
class InputLesion:
    """A lesion in the network input's pixel coordinates."""

    row: float
    col: float
    radius: float
    malignant: bool


@dataclass
class PreparedImage:
    record: ImageRecord
    tensor: np.ndarray  # (S, S) float32 in [0, 255]: one channel of preprocess().tensor (all three are equal)
    geometry: Geometry
    lesions: tuple[InputLesion, ...] = ()
    lesions_complete: bool = True  # False when a lesion of the image has no location

    @property
    def label(self) -> int:
        return int(self.record.image_label == POSITIVE_LABEL)

    def network_input(self) -> np.ndarray:
        return np.repeat(self.tensor[:, :, None], 3, axis=2)


def original_to_input(row: float, col: float, geometry: Geometry) -> tuple[float, float]:
    """A pixel (row, col) of the original image -> its position in the network input (the inverse of
    preprocessing.heatmap_to_original's mapping, with the same pixel-centre convention)."""
    k = geometry.input_size / geometry.side
    top, _, left, _ = geometry.crop
    pad_top, pad_left = geometry.pad
    x = geometry.original_shape[1] - (col + 0.5) if geometry.flipped else col + 0.5
    return k * (row + 0.5 - top + pad_top) - 0.5, k * (x - left + pad_left) - 0.5


# Research data is trusted: the upload limits (made for a web request) do not apply to it.
TRUSTED_LIMITS_KW = {"max_file_bytes": 1 << 31, "max_pixels": 200_000_000}


def decode_record(record: ImageRecord):
    """The record's image exactly as serving decodes it (preprocessing.decode_for_model: the platform's one
    decoder at the working resolution), as a DecodedImage whose metadata keeps the original rows/columns."""
    from imaging.limits import DecodeLimits
    from inference.serving.preprocessing import decode_for_model

    return decode_for_model(
        filename=record.path.name, data=record.path.read_bytes(), limits=DecodeLimits(**TRUSTED_LIMITS_KW)
    )


def working_scale(decoded) -> float:
    """Working-resolution pixels per original pixel (1.0 unless the image was larger than WORKING_MAX_SIDE)."""
    return decoded.pixels.shape[0] / decoded.metadata.rows if decoded.metadata.rows else 1.0


def prepare_image(record: ImageRecord, *, input_size: int) -> PreparedImage:
    decoded = decode_record(record)
    prepared = preprocess(decoded.pixels, input_size=input_size)
    # Lesion positions are in original pixels; the geometry is in working-resolution pixels.
    to_working = working_scale(decoded)
    scale = input_size / prepared.geometry.side
    lesions = []
    for lesion in record.lesions:
        if lesion.row is None or lesion.col is None or lesion.radius is None:
            continue
        row, col = original_to_input(
            (lesion.row + 0.5) * to_working - 0.5, (lesion.col + 0.5) * to_working - 0.5, prepared.geometry
        )
        radius = lesion.radius * to_working * scale
        lesions.append(InputLesion(row, col, max(1.0, radius), lesion.pathology == POSITIVE_LABEL))
    complete = all(lesion.row is not None and lesion.radius is not None for lesion in record.lesions)
    return PreparedImage(
        record=record,
        tensor=np.ascontiguousarray(prepared.tensor[:, :, 0]),
        geometry=prepared.geometry,
        lesions=tuple(lesions),
        lesions_complete=complete and (bool(lesions) or not record.has_lesion),
    )


def prepare_images(records: Sequence[ImageRecord], *, input_size: int, progress: bool = False) -> list[PreparedImage]:
    items = records
    if progress:
        from tqdm import tqdm

        items = tqdm(records, desc="decode + preprocess", unit="image", leave=False)
    return [prepare_image(record, input_size=input_size) for record in items]


# ---- augmentation -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    enabled: bool = True
    max_rotation_deg: float = 15.0
    max_shift_fraction: float = 0.06  # of the output side
    scale_range: tuple[float, float] = (0.9, 1.1)
    vertical_flip: bool = True
    gamma_range: tuple[float, float] = (0.8, 1.25)
    contrast_range: tuple[float, float] = (0.9, 1.1)

    def as_dict(self) -> dict:
        if not self.enabled:
            return {"enabled": False}
        return {
            "enabled": True,
            "rotation_deg": self.max_rotation_deg,
            "shift_fraction": self.max_shift_fraction,
            "scale_range": list(self.scale_range),
            "vertical_flip": self.vertical_flip,
            "horizontal_flip": False,
            "gamma_range": list(self.gamma_range),
            "contrast_range": list(self.contrast_range),
        }


def crop_around(
    image: np.ndarray,
    *,
    centre: tuple[float, float],
    size: int,
    rng: np.random.Generator,
    augmentation: Augmentation,
) -> np.ndarray:
    """A size x size window of `image` centred on (row, col), rotated/scaled/flipped/shifted when augmenting.
    Outside the image is black, as the network sees beyond the breast in a served image."""
    row, col = centre
    angle, scale, flip = 0.0, 1.0, False
    if augmentation.enabled:
        angle = rng.uniform(-augmentation.max_rotation_deg, augmentation.max_rotation_deg)
        scale = rng.uniform(*augmentation.scale_range)
        flip = augmentation.vertical_flip and rng.random() < 0.5
        shift = augmentation.max_shift_fraction * size
        row, col = row + rng.uniform(-shift, shift), col + rng.uniform(-shift, shift)
    half = (size - 1) / 2.0
    # Maps image (x, y) -> patch (u, v): rotate and scale about the centre, then move it to the patch centre.
    matrix = cv2.getRotationMatrix2D((float(col), float(row)), angle, scale)
    matrix[0, 2] += half - col
    matrix[1, 2] += half - row
    if flip:
        matrix[1] = -matrix[1]
        matrix[1, 2] += size - 1
    patch = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
    )
    return intensity_augment(patch, rng=rng, augmentation=augmentation)


def intensity_augment(image: np.ndarray, *, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    if not augmentation.enabled:
        return image
    gamma = math.exp(rng.uniform(*np.log(augmentation.gamma_range)))
    contrast = rng.uniform(*augmentation.contrast_range)
    out = 255.0 * np.power(np.clip(image, 0.0, 255.0) / 255.0, gamma) * contrast
    return np.clip(out, 0.0, 255.0).astype(np.float32)  # black stays black: no additive shift


# ---- samplers ---------------------------------------------------------------------------------------------------


@dataclass
class Epoch:
    inputs: np.ndarray  # (n, s, s, 3) float32 in [0, 255]
    labels: np.ndarray  # (n,) float32 in {0, 1}
    weights: np.ndarray  # (n,) float32
    counts: dict = field(default_factory=dict)


def class_weights(labels: np.ndarray, *, balanced: bool) -> np.ndarray:
    """Per-sample weights giving both classes the same total weight (mean weight 1), or all ones."""
    labels = np.asarray(labels)
    weights = np.ones(len(labels), dtype=np.float32)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if balanced and positives and negatives:
        weights[labels == 1] = len(labels) / (2.0 * positives)
        weights[labels == 0] = len(labels) / (2.0 * negatives)
    return weights


@dataclass
class PatchSampler:
    """One epoch of patches at the served pixel scale.

    Per lesion with a location: `lesion_patches` patches centred near it (label 1 if malignant, else 0; the
    centre moves by up to half the radius, so the lesion stays inside). Per image: `tissue_patches` patches of
    tissue at least a patch half-width away from every lesion (label 0), from normal images and lesion images
    alike, drawn over the breast and its border so pectoral muscle, skin line and background are seen too.
    Images with an abnormality whose location is unknown give no patches at all (their tissue may hold it).
    """

    images: Sequence[PreparedImage]
    patch_size: int
    augmentation: Augmentation
    balanced: bool = True
    lesion_patches: int = 4
    tissue_patches: int = 2
    # image_id -> centres where the current network scores highest away from any lesion (hard negatives), set
    # between epochs by the trainer: bright film labels, pectoral muscle and dense tissue the network confuses.
    hard_centres: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def usable(self) -> list[PreparedImage]:
        return [image for image in self.images if image.lesions_complete]

    def away_from_lesions(self, image: PreparedImage, row: float, col: float) -> bool:
        return all(
            math.hypot(row - lesion.row, col - lesion.col) > lesion.radius + self.patch_size / 2
            for lesion in image.lesions
        )

    def epoch(self, rng: np.random.Generator) -> Epoch:
        inputs, labels, kinds = [], [], []
        for image in self.usable():
            for lesion in image.lesions:
                for _ in range(self.lesion_patches):
                    jitter = 0.5 * min(lesion.radius, self.patch_size / 4)
                    centre = (lesion.row + rng.uniform(-jitter, jitter), lesion.col + rng.uniform(-jitter, jitter))
                    inputs.append(self._crop(image, centre, rng))
                    labels.append(int(lesion.malignant))
                    kinds.append("malignant" if lesion.malignant else "benign")
            for centre in self._tissue_centres(image, rng):
                inputs.append(self._crop(image, centre, rng))
                labels.append(0)
                kinds.append("tissue")
            for centre in self.hard_centres.get(image.record.image_id, ()):
                inputs.append(self._crop(image, centre, rng))
                labels.append(0)
                kinds.append("hard_negative")
        if not inputs:
            raise ValueError("No training patches: no image has usable lesion locations or tissue.")
        batch = np.stack(inputs)[..., None].repeat(3, axis=3)
        y = np.asarray(labels, dtype=np.float32)
        counts = {kind: kinds.count(kind) for kind in ("malignant", "benign", "tissue", "hard_negative")}
        return Epoch(batch, y, class_weights(y, balanced=self.balanced), counts)

    def _crop(self, image: PreparedImage, centre: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
        return crop_around(image.tensor, centre=centre, size=self.patch_size, rng=rng, augmentation=self.augmentation)

    def _tissue_centres(self, image: PreparedImage, rng: np.random.Generator) -> list[tuple[float, float]]:
        tensor = image.tensor
        rows, cols = np.nonzero(tensor > 8.0)  # the breast and anything bright; background is ~0
        if len(rows) == 0:
            rows, cols = np.nonzero(np.ones_like(tensor, dtype=bool))
        centres: list[tuple[float, float]] = []
        for _ in range(self.tissue_patches * 20):
            if len(centres) == self.tissue_patches:
                break
            pick = int(rng.integers(len(rows)))
            row, col = float(rows[pick]), float(cols[pick])
            if self.away_from_lesions(image, row, col):
                centres.append((row, col))
        return centres


@dataclass
class WholeImageSampler:
    """One epoch of whole preprocessed images, augmented in place (same size out as in)."""

    images: Sequence[PreparedImage]
    augmentation: Augmentation
    balanced: bool = True

    def usable(self) -> list[PreparedImage]:
        return list(self.images)

    def epoch(self, rng: np.random.Generator) -> Epoch:
        inputs = []
        for image in self.images:
            size = image.tensor.shape[0]
            centre = ((size - 1) / 2.0, (size - 1) / 2.0)
            inputs.append(crop_around(image.tensor, centre=centre, size=size, rng=rng, augmentation=self.augmentation))
        y = np.asarray([image.label for image in self.images], dtype=np.float32)
        counts = {"malignant": int(y.sum()), "other": int(len(y) - y.sum())}
        return Epoch(np.stack(inputs)[..., None].repeat(3, axis=3), y, class_weights(y, balanced=self.balanced), counts)
