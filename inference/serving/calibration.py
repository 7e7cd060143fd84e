"""Probability calibration (Platt scaling on the logit) and operating-point helpers, shared by training and
serving."""

from __future__ import annotations

import math

import numpy as np


def calibrated_probability(logit: float | np.ndarray, *, scale: float, bias: float) -> float | np.ndarray:
    z = np.asarray(logit, dtype=np.float64) * scale + bias
    p = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
    return float(p) if np.ndim(p) == 0 else p


def fit_platt(logits: np.ndarray, labels: np.ndarray, *, iterations: int = 100) -> tuple[float, float]:
    """Fit p = sigmoid(scale * logit + bias) on the log loss (Platt 1999, with his target smoothing).

    Robust on logits far from zero and on separable data: the logits are standardised internally (Newton's method
    on raw logits around -5, started at slope 1, diverged to a slope of about 3e10), each damped Newton step is
    halved until the loss decreases (backtracking line search), the number of steps is bounded, and the
    coefficients are mapped back to the raw logit. Platt's smoothed targets keep the optimum finite even when
    the classes are perfectly separable. Always returns finite numbers ((1, 0) when there is nothing to fit)."""
    logits = np.asarray(logits, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=np.float64).ravel()
    finite = np.isfinite(logits)
    logits, labels = logits[finite], labels[finite]
    positives, negatives = float((labels > 0).sum()), float((labels <= 0).sum())
    if positives == 0 or negatives == 0:
        return 1.0, 0.0
    targets = np.where(labels > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    centre, spread = float(logits.mean()), float(logits.std())
    if not spread > 1e-12:
        spread = 1.0
    x = (logits - centre) / spread

    def loss(a: float, b: float) -> float:
        z = a * x + b
        # log(1 + exp(z)) - t * z, computed stably
        return float(np.sum(np.logaddexp(0.0, z) - targets * z))

    prior = (positives + 1) / (len(labels) + 2)
    a, b = 0.0, math.log(prior / (1 - prior))  # start at the constant (prior) model
    current = loss(a, b)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a * x + b, -60, 60)))
        w = np.maximum(p * (1 - p), 1e-12)
        gradient = np.array([np.sum((p - targets) * x), np.sum(p - targets)])
        hessian = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + np.eye(2) * 1e-6
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while size > 1e-10:
            a_new, b_new = a - size * step[0], b - size * step[1]
            new = loss(a_new, b_new)
            if math.isfinite(new) and new <= current + 1e-4 * size * float(gradient @ -step):
                break
            size /= 2
        else:
            break  # no decrease along the Newton direction: at the optimum (to rounding)
        a, b, current = a_new, b_new, new
        if np.max(np.abs(size * step)) < 1e-10:
            break
    scale, bias = a / spread, b - a * centre / spread
    if not (math.isfinite(scale) and math.isfinite(bias)):
        return 1.0, 0.0
    return float(scale), float(bias)
