"""Agreement of ordinal density categories with labels: accuracy and linearly weighted Cohen's kappa with 95 %
intervals, plus the dense-versus-not split. Plain numpy; classes are integers 0..k-1 in ordinal order.

Intervals: accuracy at the woman level is a proportion of independent women, so it gets a Wilson interval
(inference.metrics.wilson_ci). Kappa has no such formula worth trusting at 49 women, so it gets a percentile
bootstrap over women, seeded. Figures over images (two per woman, correlated) are bootstrapped by woman as well:
a resample draws women and takes both their images.
"""

from __future__ import annotations

import numpy as np

from inference.metrics import DEFAULT_BOOTSTRAP, cluster_bootstrap_ci, weighted_kappa, wilson_ci


def confusion(labels, predictions, *, classes: int) -> list[list[int]]:
    """Rows: label, columns: prediction."""
    table = np.zeros((classes, classes), dtype=int)
    np.add.at(table, (np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)), 1)
    return table.tolist()


def agreement_summary(
    labels,
    predictions,
    *,
    clusters,
    class_names: tuple[str, ...],
    dense: tuple[str, ...],
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict:
    """Accuracy, linear (and, for reference, quadratic) kappa with 95 % intervals, the confusion matrix, and
    dense (`dense` classes) versus not dense. With one unit per cluster (women) accuracy's interval is Wilson's;
    with several (images) it is the cluster bootstrap."""
    labels, predictions, clusters = np.asarray(labels, int), np.asarray(predictions, int), np.asarray(clusters)
    k = len(class_names)
    correct = int((labels == predictions).sum())
    per_cluster = len(np.unique(clusters)) == len(clusters)

    def accuracy(y, p):
        return float(np.mean(y == p))

    def kappa(y, p):
        return weighted_kappa(y, p, classes=k)

    options = {"n": n_bootstrap, "seed": seed}
    accuracy_ci = (
        wilson_ci(correct, len(labels))
        if per_cluster
        else cluster_bootstrap_ci(accuracy, labels, predictions, clusters, **options)
    )
    dense_index = [class_names.index(name) for name in dense]
    truly, called = np.isin(labels, dense_index), np.isin(predictions, dense_index)
    tp, fn = int((truly & called).sum()), int((truly & ~called).sum())
    tn, fp = int((~truly & ~called).sum()), int((~truly & called).sum())
    return {
        "units": len(labels),
        "women": len(np.unique(clusters)),
        "accuracy": correct / len(labels),
        "accuracy_ci95": list(accuracy_ci),
        "accuracy_interval": "Wilson" if per_cluster else "bootstrap over women",
        "kappa_linear": kappa(labels, predictions),
        "kappa_linear_ci95": list(cluster_bootstrap_ci(kappa, labels, predictions, clusters, **options)),
        "kappa_quadratic": weighted_kappa(labels, predictions, classes=k, weights="quadratic"),
        "bootstrap": {"resamples": n_bootstrap, "seed": seed, "unit": "woman"},
        "classes": list(class_names),
        "confusion": confusion(labels, predictions, classes=k),
        "label_counts": np.bincount(labels, minlength=k).tolist(),
        "dense": {
            "classes": list(dense),
            "sensitivity": tp / (tp + fn) if tp + fn else None,
            "sensitivity_ci95": list(wilson_ci(tp, tp + fn)) if per_cluster else None,
            "specificity": tn / (tn + fp) if tn + fp else None,
            "specificity_ci95": list(wilson_ci(tn, tn + fp)) if per_cluster else None,
            "true_positives": tp,
            "false_negatives": fn,
            "true_negatives": tn,
            "false_positives": fp,
        },
    }
