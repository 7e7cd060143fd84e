"""Metrics with confidence intervals, and the choice of the operating point (validation data only).

Plain numpy and scikit-learn; no TensorFlow, no Django. Bootstrap resamples are stratified (positives and
negatives resampled separately) so every resample has both classes, and seeded so a report re-runs the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

DEFAULT_BOOTSTRAP = 2000


class SealedSplitError(Exception):
    """An operating point, a calibration or a checkpoint was about to be chosen on the sealed test split."""


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (ties count one half); NaN when a class is missing."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = scores[labels], scores[~labels]
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    # Mann-Whitney U through average ranks: exact with ties.
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positives, negatives]))
    u = ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def bootstrap_auc_ci(
    labels, scores, *, n: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """bootstrap_ci(roc_auc, ...) to the last bit (the same seeded draws, the same Mann-Whitney count), without
    ranking each resample: every negative's place among the distinct negative scores and every positive's range
    of them are found once, then a resample's AUC is a count of its negatives per place (a bincount) summed at its
    positives' places. O(n) numpy per resample instead of a sort: 2,000 resamples of 6,500 breasts in a fraction
    of a second instead of seconds (the performance page).

    Why the same: U = sum over resampled positives of (negatives below + half the negatives equal); both the rank
    formula and this count add integers and halves, exact in float64, and divide by the same n_pos * n_neg."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positive_index, negative_index = np.flatnonzero(labels), np.flatnonzero(~labels)
    if len(positive_index) == 0 or len(negative_index) == 0:
        return float("nan"), float("nan")
    distinct = np.unique(scores[negative_index])
    place = np.zeros(len(scores), dtype=np.int64)  # for a negative: its distinct score's position
    place[negative_index] = np.searchsorted(distinct, scores[negative_index])
    below = np.searchsorted(distinct, scores, side="left")  # for a positive: distinct negative scores under it
    up_to = np.searchsorted(distinct, scores, side="right")  # ... and up to it (the difference: a tie)
    pairs = len(positive_index) * len(negative_index)
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for i in range(n):
        # The draws of bootstrap_ci, in its order: positives, then negatives.
        positives = rng.choice(positive_index, len(positive_index))
        negatives = rng.choice(negative_index, len(negative_index))
        cumulative = np.concatenate(([0], np.cumsum(np.bincount(place[negatives], minlength=len(distinct)))))
        less, less_or_equal = cumulative[below[positives]], cumulative[up_to[positives]]
        values[i] = float((less.sum() + 0.5 * (less_or_equal - less).sum()) / pairs)
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def average_precision(labels, scores) -> float:
    from sklearn.metrics import average_precision_score

    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(average_precision_score(labels, scores))


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    labels,
    scores,
    *,
    n: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of `metric` over stratified bootstrap resamples; (nan, nan) when undefined."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positive_index, negative_index = np.flatnonzero(labels), np.flatnonzero(~labels)
    if len(positive_index) == 0 or len(negative_index) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for i in range(n):
        pick = np.concatenate(
            [rng.choice(positive_index, len(positive_index)), rng.choice(negative_index, len(negative_index))]
        )
        values[i] = metric(labels[pick], scores[pick])
    values = values[np.isfinite(values)]
    if len(values) == 0:  # the statistic is undefined on every resample (e.g. every rating the same category)
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def wilson_ci(successes: int, total: int, *, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (sensible for small counts and for 0 % or 100 %)."""
    if total == 0:
        return float("nan"), float("nan")
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    sensitivity: float
    specificity: float
    true_positives: int
    false_negatives: int
    true_negatives: int
    false_positives: int

    def as_dict(self) -> dict:
        tpr_ci = wilson_ci(self.true_positives, self.true_positives + self.false_negatives)
        tnr_ci = wilson_ci(self.true_negatives, self.true_negatives + self.false_positives)
        return {
            "threshold": self.threshold,
            "sensitivity": self.sensitivity,
            "sensitivity_ci95": list(tpr_ci),
            "specificity": self.specificity,
            "specificity_ci95": list(tnr_ci),
            "true_positives": self.true_positives,
            "false_negatives": self.false_negatives,
            "true_negatives": self.true_negatives,
            "false_positives": self.false_positives,
        }


def at_threshold(labels, probabilities, threshold: float) -> OperatingPoint:
    """Sensitivity and specificity when `probability >= threshold` is called positive (as the platform does)."""
    labels = np.asarray(labels, dtype=bool)
    called = np.asarray(probabilities, dtype=np.float64) >= threshold
    tp, fn = int((called & labels).sum()), int((~called & labels).sum())
    tn, fp = int((~called & ~labels).sum()), int((called & ~labels).sum())
    sensitivity = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    return OperatingPoint(float(threshold), sensitivity, specificity, tp, fn, tn, fp)


def choose_operating_point(
    labels,
    probabilities,
    *,
    splits: Iterable[str],
    method: str = "sensitivity",
    target_sensitivity: float = 0.85,
) -> OperatingPoint:
    """The threshold on calibrated probabilities, chosen on validation predictions only.

    `splits` names the dataset split of every prediction; any 'test' prediction is refused (SealedSplitError).
    method 'sensitivity': the highest threshold whose sensitivity reaches `target_sensitivity` (screening favours
    missing few cancers; the highest such threshold keeps specificity as high as that allows). 'youden': the
    threshold maximising sensitivity + specificity - 1.
    """
    splits = list(splits)
    labels = np.asarray(labels, dtype=bool)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(splits) != len(labels):
        raise ValueError("One split name per prediction is needed.")
    if "test" in splits:
        raise SealedSplitError(
            "The operating point must be chosen on validation data; predictions on the sealed test split were given."
        )
    if not labels.any() or labels.all():
        raise ValueError("Choosing a threshold needs both positive and negative validation examples.")
    candidates = np.unique(probabilities)[::-1]  # high to low
    points = [at_threshold(labels, probabilities, t) for t in candidates]
    if method == "youden":
        return max(points, key=lambda p: (p.sensitivity + p.specificity - 1, p.threshold))
    if method != "sensitivity":
        raise ValueError(f"Unknown threshold method {method!r}.")
    for point in points:
        if point.sensitivity >= target_sensitivity:
            return point
    return points[-1]


def auc_summary(labels, scores, *, seed: int = 0, n_bootstrap: int = DEFAULT_BOOTSTRAP) -> dict:
    labels = np.asarray(labels, dtype=bool)
    auc = roc_auc(labels, scores)
    low, high = bootstrap_ci(roc_auc, labels, scores, n=n_bootstrap, seed=seed)
    return {"auc": auc, "auc_ci95": [low, high], "positives": int(labels.sum()), "negatives": int((~labels).sum())}


def ap_summary(labels, scores, *, seed: int = 0, n_bootstrap: int = DEFAULT_BOOTSTRAP) -> dict:
    labels = np.asarray(labels, dtype=bool)
    ap = average_precision(labels, scores)
    low, high = bootstrap_ci(average_precision, labels, scores, n=n_bootstrap, seed=seed)
    return {"average_precision": ap, "average_precision_ci95": [low, high], "prevalence": float(labels.mean())}


def task_labels(image_labels: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each reported task, (mask of the images it uses, binary labels of those images).

    malignant_vs_rest: all images, malignant = 1. malignant_vs_benign: images with a lesion only.
    abnormal_vs_normal: all images, any lesion = 1.
    """
    image_labels = np.asarray(list(image_labels))
    lesion = image_labels != "NORMAL"
    malignant = image_labels == "MALIGNANT"
    return {
        "malignant_vs_rest": (np.ones(len(image_labels), dtype=bool), malignant),
        "malignant_vs_benign": (lesion, malignant[lesion]),
        "abnormal_vs_normal": (np.ones(len(image_labels), dtype=bool), lesion),
    }


def task_aucs(image_labels, scores, *, seed: int = 0, n_bootstrap: int = DEFAULT_BOOTSTRAP) -> dict[str, dict]:
    scores = np.asarray(scores, dtype=np.float64)
    return {
        task: auc_summary(labels, scores[mask], seed=seed, n_bootstrap=n_bootstrap)
        for task, (mask, labels) in task_labels(image_labels).items()
    }


def calibration_bins(labels, probabilities, *, bins: int = 10) -> list[dict]:
    """Reliability diagram data: equal-width bins of predicted probability, observed frequency per bin."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        if members.any():
            out.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "count": int(members.sum()),
                    "mean_predicted": float(probabilities[members].mean()),
                    "observed": float(labels[members].mean()),
                }
            )
    return out


def expected_calibration_error(labels, probabilities, *, bins: int = 10) -> float:
    total = len(labels)
    return float(
        sum(
            b["count"] / total * abs(b["observed"] - b["mean_predicted"])
            for b in calibration_bins(labels, probabilities, bins=bins)
        )
    )


def brier_score(labels, probabilities) -> float:
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - np.asarray(labels, dtype=np.float64)) ** 2))


TASK_TITLES = {
    "malignant_vs_rest": "Malignant vs benign + normal (all images)",
    "malignant_vs_benign": "Malignant vs benign (images with a lesion)",
    "abnormal_vs_normal": "Abnormal (any lesion) vs normal",
}


def finite_json(value):
    """JSON has no NaN: write null instead."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


# ---- agreement of ordinal categories (breast density) -------------------------------------------------------


def weighted_kappa(labels, predictions, *, classes: int, weights: str = "linear") -> float:
    """Cohen's kappa with linear (|i - j|) or quadratic disagreement weights; NaN when chance agreement is total."""
    labels, predictions = np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)
    if len(labels) == 0:
        return float("nan")
    observed = np.zeros((classes, classes))
    np.add.at(observed, (labels, predictions), 1.0)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    distance = np.abs(np.subtract.outer(np.arange(classes), np.arange(classes))).astype(float)
    weight = distance if weights == "linear" else distance**2
    denominator = (weight * expected).sum()
    if denominator == 0:
        return float("nan")
    return float(1.0 - (weight * observed).sum() / denominator)


def cluster_bootstrap_ci(
    statistic, labels, predictions, clusters, *, n: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of statistic(labels, predictions) over resamples of whole clusters (women)."""
    labels, predictions, clusters = np.asarray(labels), np.asarray(predictions), np.asarray(clusters)
    names, index = np.unique(clusters, return_inverse=True)
    members = [np.flatnonzero(index == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for b in range(n):
        pick = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        values[b] = statistic(labels[pick], predictions[pick])
    values = values[np.isfinite(values)]
    if len(values) == 0:  # the statistic is undefined on every resample (e.g. every rating the same category)
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))
