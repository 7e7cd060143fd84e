"""Figures of screening strategies with 95 % intervals from a bootstrap that resamples WOMEN, and paired differences
from today's practice. Plain numpy; no Django.

Why women: a woman's screens (several rounds) and her two breasts are not independent observations, so the
resampling unit is the woman: each draw takes a woman with all her screens and both breasts. Every figure is a ratio
of sums of per-screen counts, so a resample's figures follow from the women's count totals weighted by how often
each woman was drawn: one matrix product gives every figure of every strategy for a batch of resamples, and the
strategy and the baseline are always measured on the same resampled women (which the paired difference needs).
inference.metrics.bootstrap_ci does not fit: it resamples single items stratified by label, one metric per call in
a Python loop. Its wilson_ci is reused where the bootstrap cannot show spread (below).

Intervals: percentile intervals over the resamples (resamples where a figure is undefined, e.g. no cancers drawn,
are left out of that figure's interval). A proportion at 0 % or 100 % has the same value in every resample, so the
bootstrap shows no spread there; such a figure gets the Wilson score interval of its counts instead, and says so.

"Not enough data": a figure is withheld (its counts are still given) below these minimums. With fewer than 10
cancers one cancer moves sensitivity by more than 10 points and its interval covers most of 0-100 %; specificity
and the recall rate, which screening programmes read to a tenth of a percentage point, need 100 screens at least.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cases.performance.strategies import Decisions, ScreenArrays, StrategySpec
from inference.metrics import DEFAULT_BOOTSTRAP, wilson_ci

LEVEL = 0.95
# Cells of the (resamples x women) weight matrix built at once: about 32 MB of float64, whatever the site's size.
BATCH_CELLS = 4_000_000


@dataclass(frozen=True)
class Minimums:
    cancers: int = 10  # cancer screens (or malignant breasts) behind a sensitivity or a detection rate
    non_cancers: int = 100  # non-cancer screens (or breasts) behind a specificity
    screens: int = 100  # screens behind a recall rate, a detection rate or a workload
    recalls: int = 10  # recalls behind a PPV


COLUMNS = (
    "screens",
    "cancers",
    "non_cancers",
    "detected",
    "cleared_non_cancers",
    "recalls",
    "screen_reads",
    "arbitration_reads",
    "all_reads",
    "malignant_breasts",
    "detected_breasts",
    "non_malignant_breasts",
    "cleared_non_malignant_breasts",
)
_COLUMN = {name: i for i, name in enumerate(COLUMNS)}


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    numerator: str
    denominator: str
    scale: float  # 1 for a proportion, 1000 for "per 1,000 screens"
    proportion: bool  # the numerator counts a subset of the denominator (Wilson applies)
    needs: tuple[tuple[str, str], ...]  # (column, Minimums field): the column's total must reach the minimum


METRICS = (
    MetricSpec("sensitivity", "Sensitivity", "detected", "cancers", 1, True, (("cancers", "cancers"),)),
    MetricSpec(
        "specificity", "Specificity", "cleared_non_cancers", "non_cancers", 1, True, (("non_cancers", "non_cancers"),)
    ),
    MetricSpec("recall_rate", "Recall rate", "recalls", "screens", 1, True, (("screens", "screens"),)),
    MetricSpec(
        "cancer_detection_per_1000",
        "Cancers detected per 1,000 screens",
        "detected",
        "screens",
        1000,
        True,
        (("screens", "screens"), ("cancers", "cancers")),
    ),
    MetricSpec("ppv_of_recall", "PPV of recall", "detected", "recalls", 1, True, (("recalls", "recalls"),)),
    MetricSpec(
        "screen_reads_per_1000",
        "Screen reads per 1,000",
        "screen_reads",
        "screens",
        1000,
        False,
        (("screens", "screens"),),
    ),
    MetricSpec(
        "arbitration_reads_per_1000",
        "Arbitration reads per 1,000",
        "arbitration_reads",
        "screens",
        1000,
        False,
        (("screens", "screens"),),
    ),
    MetricSpec(
        "all_reads_per_1000", "All reads per 1,000", "all_reads", "screens", 1000, False, (("screens", "screens"),)
    ),
    MetricSpec(
        "breast_sensitivity",
        "Per-breast sensitivity",
        "detected_breasts",
        "malignant_breasts",
        1,
        True,
        (("malignant_breasts", "cancers"),),
    ),
    MetricSpec(
        "breast_specificity",
        "Per-breast specificity",
        "cleared_non_malignant_breasts",
        "non_malignant_breasts",
        1,
        True,
        (("non_malignant_breasts", "non_cancers"),),
    ),
)


def screen_columns(arrays: ScreenArrays, decisions: Decisions) -> np.ndarray:
    """(N, len(COLUMNS)) per-screen counts of one strategy; zero for screens it cannot replay."""
    evaluable = decisions.evaluable
    cancer, recall, breasts = arrays.cancer, decisions.recall, decisions.recall_breasts
    non_malignant = arrays.has_outcome & ~arrays.malignant
    columns = (
        np.ones(len(arrays)),
        cancer,
        ~cancer,
        cancer & recall,
        ~cancer & ~recall,
        recall,
        decisions.screen_reads,
        decisions.arbitration_reads,
        decisions.screen_reads + decisions.arbitration_reads,
        arrays.malignant.sum(axis=1),
        (arrays.malignant & breasts).sum(axis=1),
        non_malignant.sum(axis=1),
        (non_malignant & ~breasts).sum(axis=1),
    )
    return np.column_stack(columns).astype(np.float64) * evaluable[:, None]


def woman_sums(arrays: ScreenArrays, per_screen: np.ndarray) -> np.ndarray:
    """(women, C): each woman's totals over her screens."""
    return np.column_stack(
        [
            np.bincount(arrays.woman, weights=per_screen[:, c], minlength=arrays.women)
            for c in range(per_screen.shape[1])
        ]
    )


def women_resample_weights(women: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, women): how many times each woman is drawn in each resample (women drawn with replacement)."""
    draws = rng.integers(0, women, size=(count, women), dtype=np.int32).astype(np.intp)
    draws += (np.arange(count, dtype=np.intp) * women)[:, None]
    return np.bincount(draws.ravel(), minlength=count * women).reshape(count, women)


def women_bootstrap_totals(per_woman: np.ndarray, *, n: int, seed: int) -> np.ndarray:
    """(n, C): the column totals of n resamples of the women; each woman brings all her screens as one block."""
    women = per_woman.shape[0]
    totals = np.zeros((n, per_woman.shape[1]))
    if women == 0:
        return totals
    # Many columns repeat (screens and cancers are the same for most strategies): resample each distinct one once.
    first_of: dict[bytes, int] = {}
    position = np.array([first_of.setdefault(column.tobytes(), len(first_of)) for column in per_woman.T], dtype=int)
    distinct = per_woman[:, [position.tolist().index(i) for i in range(len(first_of))]]
    # Every count is a whole number; float32 adds whole numbers exactly below 2**24, and runs about five times
    # faster than float64 here. Larger sites fall back to float64.
    exact32 = women * float(np.abs(distinct).max(initial=0)) < 2**24
    dtype = np.float32 if exact32 else np.float64
    distinct = distinct.astype(dtype)
    rng = np.random.default_rng(seed)
    batch = max(1, BATCH_CELLS // women)
    for start in range(0, n, batch):
        count = min(batch, n - start)
        weights = women_resample_weights(women, count, rng).astype(dtype)
        totals[start : start + count] = (weights @ distinct)[:, position]
    return totals


def _values(totals: np.ndarray, metric: MetricSpec) -> np.ndarray:
    numerator, denominator = totals[..., _COLUMN[metric.numerator]], totals[..., _COLUMN[metric.denominator]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, metric.scale * numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _percentile(values: np.ndarray) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None
    alpha = (1 - LEVEL) / 2
    return float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))


def _enough(totals: np.ndarray, metric: MetricSpec, minimums: Minimums) -> bool:
    return all(totals[_COLUMN[column]] >= getattr(minimums, field) for column, field in metric.needs)


def _figure(point: np.ndarray, resampled: np.ndarray, metric: MetricSpec, minimums: Minimums) -> dict:
    numerator = int(point[_COLUMN[metric.numerator]])
    denominator = int(point[_COLUMN[metric.denominator]])
    figure = {"numerator": numerator, "denominator": denominator, "enough": _enough(point, metric, minimums)}
    estimate = float(_values(point, metric))
    if not figure["enough"] or not np.isfinite(estimate):
        return figure | {"enough": False, "estimate": None, "low": None, "high": None, "interval": None}
    if metric.proportion and numerator in (0, denominator):
        low, high = wilson_ci(numerator, denominator)
        # Rounding can leave a Wilson bound a hair inside 0 % or 100 %: the interval must hold the estimate.
        low, high = min(low * metric.scale, estimate), max(high * metric.scale, estimate)
        return figure | {"estimate": estimate, "low": low, "high": high, "interval": "wilson"}
    low_high = _percentile(_values(resampled, metric))
    low, high = low_high if low_high else (None, None)
    return figure | {"estimate": estimate, "low": low, "high": high, "interval": "bootstrap"}


def _difference(
    point: np.ndarray, base_point: np.ndarray, resampled: np.ndarray, base_resampled: np.ndarray, metric, minimums
) -> dict:
    enough = _enough(point, metric, minimums) and _enough(base_point, metric, minimums)
    estimate = float(_values(point, metric) - _values(base_point, metric))
    if not enough or not np.isfinite(estimate):
        return {"enough": False, "estimate": None, "low": None, "high": None}
    low_high = _percentile(_values(resampled, metric) - _values(base_resampled, metric))
    low, high = low_high if low_high else (None, None)
    return {"enough": True, "estimate": estimate, "low": low, "high": high}


def _counts(arrays: ScreenArrays, decisions: Decisions, baseline: Decisions) -> dict[str, int]:
    evaluable, cancer = decisions.evaluable, arrays.cancer
    recall, base = decisions.recall & evaluable, baseline.recall & evaluable
    dismissed = decisions.recall_if_dismissed & evaluable

    def count(mask) -> int:
        return int(np.count_nonzero(mask))

    return {
        "screens": count(evaluable),
        "women": len(np.unique(arrays.woman[evaluable])),
        "cancers": count(evaluable & cancer),
        "malignant_breasts": int(arrays.malignant[evaluable].sum()),
        "detected": count(recall & cancer),
        "recalls": count(recall),
        "not_evaluable": count(~evaluable),
        "ai_fallback": count(decisions.ai_fallback & evaluable),
        "single_read": count(decisions.single_read & evaluable),
        "ai_added_recalls": count(decisions.ai_added & evaluable),
        "ai_added_cancers": count(decisions.ai_added & evaluable & cancer),
        "unresolved": count(decisions.unresolved & evaluable),
        "unresolved_cancers": count(decisions.unresolved & evaluable & cancer),
        "detected_if_unresolved_dismissed": count(dismissed & cancer),
        "recalls_if_unresolved_dismissed": count(dismissed),
        "cancers_gained": count(recall & ~base & cancer),
        "cancers_lost": count(~recall & base & cancer),
        "recalls_added": count(recall & ~base),
        "recalls_removed": count(~recall & base),
    }


def compare_strategies(
    arrays: ScreenArrays,
    strategies: Sequence[tuple[StrategySpec, Decisions]],
    baseline: Decisions,
    *,
    minimums: Minimums,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> list[dict]:
    """Each strategy's figures with intervals and its paired difference from the baseline on the same screens."""
    if n_bootstrap < 1:
        raise ValueError("n_bootstrap must be at least 1.")
    width = len(COLUMNS)
    blocks: list[np.ndarray] = []
    baseline_block: dict[bytes, int] = {}  # the baseline restricted to one evaluable mask, computed once per mask
    placement = []
    for _, decisions in strategies:
        blocks.append(screen_columns(arrays, decisions))
        own = len(blocks) - 1
        key = np.packbits(decisions.evaluable).tobytes()
        if key not in baseline_block:
            restricted = dataclasses.replace(baseline, evaluable=baseline.evaluable & decisions.evaluable)
            blocks.append(screen_columns(arrays, restricted))
            baseline_block[key] = len(blocks) - 1
        placement.append((own, baseline_block[key]))
    per_woman = woman_sums(arrays, np.hstack(blocks))
    point = per_woman.sum(axis=0)
    resampled = women_bootstrap_totals(per_woman, n=n_bootstrap, seed=seed)

    def block(values: np.ndarray, index: int) -> np.ndarray:
        return values[..., index * width : (index + 1) * width]

    table = []
    for (spec, decisions), (own, base) in zip(strategies, placement, strict=True):
        figures, differences = {}, {}
        for metric in METRICS:
            figures[metric.key] = _figure(block(point, own), block(resampled, own), metric, minimums)
            differences[metric.key] = _difference(
                block(point, own), block(point, base), block(resampled, own), block(resampled, base), metric, minimums
            )
        table.append(
            {
                "key": spec.key,
                "label": spec.label,
                "description": spec.description,
                "figures": figures,
                "difference_from_baseline": differences,
                "counts": _counts(arrays, decisions, baseline),
            }
        )
    return table
