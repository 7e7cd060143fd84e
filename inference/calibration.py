"""Probability calibration (Platt scaling on the logit) and operating-point helpers, shared by training and
serving."""

from __future__ import annotations

import math

import numpy as np


def calibrated_probability(logit: float | np.ndarray, *, scale: float, bias: float) -> float | np.ndarray:
    z = np.asarray(logit, dtype=np.float64) * scale + bias
    p = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
    return float(p) if np.ndim(p) == 0 else p


def fit_platt(logits: np.ndarray, labels: np.ndarray, *, iterations: int = 200) -> tuple[float, float]:
    """Fit p = sigmoid(a * logit + b) by Newton's method on the log loss (Platt 1999, with his target smoothing)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    positives, negatives = labels.sum(), len(labels) - labels.sum()
    if positives == 0 or negatives == 0:
        return 1.0, 0.0
    targets = np.where(labels > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a * logits + b, -60, 60)))
        w = np.maximum(p * (1 - p), 1e-12)
        gradient = np.array([np.sum((p - targets) * logits), np.sum(p - targets)])
        hessian = np.array([[np.sum(w * logits * logits), np.sum(w * logits)], [np.sum(w * logits), np.sum(w)]])
        hessian += np.eye(2) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-9:
            break
    if not (math.isfinite(a) and math.isfinite(b)):
        return 1.0, 0.0
    return float(a), float(b)
