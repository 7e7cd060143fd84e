"""The AI cut-offs of triage and of the safety net: sweeps of workload against detection and recall, the date split,
and the rules that choose each cut-off on the EARLIER period only (the figures shown are then measured on the later
period, never on the screens that chose them). Plain numpy; no Django.

Rules, argued as a screening programme would:
- Date split: by default at the median screen date: screens before it choose, screens on or after it report. A
  temporal split is what the site will live through (a cut-off fixed today meets next year's screens); a woman
  screened in both periods appears in both, with different screens.
- Triage: the highest cut-off such that, at it and at every lower cut-off, triage detects at least as many cancer
  screens as double reading did in the earlier period. Raising the cut-off moves screens to single reading; the
  first step that loses a net cancer is where the programme would start trading cancers for reading time, so the
  sweep stops before it, even if a higher cut-off regains the count by chance (a cancer lost by single reading is
  not made good by one that the first reader caught and the double reading dismissed). Only cut-offs at observed
  scores are tried, so the highest-scored screens are always double read.
- Safety net: the lowest cut-off whose extra recalls (screens the programme cleared and the AI flags) stay within
  a stated budget per 1,000 screens, 5 by default: half a percentage point of recall rate, which keeps a
  double-reading programme recalling 2-4 % inside the European guidelines' acceptable recall at subsequent
  rounds (< 5 %) while leaving room to act on the exams the AI is surest about. Extra recalls fall as the cut-off
  rises, so the lowest cut-off within budget catches the most cancers that budget allows.
- Either choice needs at least the minimum screens and cancers in the earlier period, else none is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from cases.performance.strategies import ScreenArrays, double_reading, single_reading

DEFAULT_EXTRA_RECALL_BUDGET_PER_1000 = 5.0
PLOT_POINTS = 200
# The safety net's plotted curve stops at 50 extra recalls per 1,000 (5 percentage points of recall rate).
PLOT_SAFETY_NET_EXTRA_RECALLS_PER_1000 = 50.0

SPLIT_RULE = "Median screen date: screens before it choose the cut-offs, screens on or after it report the figures."
TRIAGE_RULE = (
    "Highest cut-off at which, and at every lower cut-off, triage detects at least as many cancer screens as double "
    "reading did in the earlier period; screens scored at or above it are double read."
)
SAFETY_NET_RULE = (
    "Lowest cut-off whose extra recalls (cleared screens the AI flags at or above it) stay within {budget:g} per "
    "1,000 screens of the earlier period."
)


@dataclass(frozen=True)
class Sweep:
    """A strategy's screen-level totals at each candidate cut-off (ascending), beside double reading's."""

    cutoffs: np.ndarray
    screens: int
    cancers: int
    detected: np.ndarray
    recalls: np.ndarray
    screen_reads: np.ndarray
    arbitration_reads: np.ndarray
    baseline_detected: int
    baseline_recalls: int
    baseline_screen_reads: int

    def as_dict(
        self,
        *,
        chosen: float | None = None,
        max_points: int = PLOT_POINTS,
        max_extra_recalls_per_1000: float | None = None,
    ) -> dict:
        """The curve for plotting, thinned to about max_points points (always keeping the chosen cut-off).

        max_extra_recalls_per_1000: only cut-offs adding at most that many recalls (the safety net's curve runs to
        recalling everyone; the part a programme would consider is the start)."""
        considered = np.arange(len(self.cutoffs))
        if max_extra_recalls_per_1000 is not None and self.screens:
            extra = 1000 * (self.recalls - self.baseline_recalls) / self.screens
            considered = considered[extra <= max_extra_recalls_per_1000]
        m = len(considered)
        keep = set(considered[np.unique(np.linspace(0, m - 1, min(m, max_points)).round().astype(int))].tolist())
        if chosen is not None and len(self.cutoffs):
            keep.add(int(np.searchsorted(self.cutoffs, chosen)))
        index = np.array(sorted(i for i in keep if i < len(self.cutoffs)), dtype=int)
        return {
            "screens": self.screens,
            "cancers": self.cancers,
            "cutoffs": self.cutoffs[index].tolist(),
            "detected": self.detected[index].astype(int).tolist(),
            "recalls": self.recalls[index].astype(int).tolist(),
            "sensitivity": _ratios(self.detected[index], self.cancers),
            "recall_rate": _ratios(self.recalls[index], self.screens),
            "extra_recalls_per_1000": _ratios(self.recalls[index] - self.baseline_recalls, self.screens, scale=1000),
            "screen_reads_per_1000": _ratios(self.screen_reads[index], self.screens, scale=1000),
            "baseline": {
                "sensitivity": _ratio(self.baseline_detected, self.cancers),
                "recall_rate": _ratio(self.baseline_recalls, self.screens),
                "screen_reads_per_1000": _ratio(self.baseline_screen_reads, self.screens, scale=1000),
            },
            "chosen_cutoff": chosen,
            "max_extra_recalls_per_1000": max_extra_recalls_per_1000,
        }


def _ratio(numerator, denominator: int, *, scale: float = 1) -> float | None:
    return float(scale * numerator / denominator) if denominator else None


def _ratios(numerators: np.ndarray, denominator: int, *, scale: float = 1) -> list[float | None]:
    return [_ratio(x, denominator, scale=scale) for x in numerators]


def _screen_totals(arrays: ScreenArrays, recall: np.ndarray, screen_reads, arbitration_reads) -> np.ndarray:
    """(N, 4) per screen: detected, recalled, screen reads, arbitration reads."""
    n = len(arrays)
    return np.column_stack(
        [
            arrays.cancer & recall,
            recall,
            np.broadcast_to(screen_reads, (n,)),
            np.broadcast_to(arbitration_reads, (n,)),
        ]
    ).astype(np.float64)


def _sweep(arrays: ScreenArrays, cutoffs: np.ndarray, totals: np.ndarray, baseline: np.ndarray) -> Sweep:
    base = baseline.sum(axis=0)
    return Sweep(
        cutoffs=cutoffs,
        screens=len(arrays),
        cancers=int(arrays.cancer.sum()),
        detected=totals[:, 0],
        recalls=totals[:, 1],
        screen_reads=totals[:, 2],
        arbitration_reads=totals[:, 3],
        baseline_detected=int(base[0]),
        baseline_recalls=int(base[1]),
        baseline_screen_reads=int(base[2]),
    )


def triage_sweep(arrays: ScreenArrays) -> Sweep:
    """Triage at every observed screen score as the cut-off (score >= cut-off: double read)."""
    base, single = double_reading(arrays), single_reading(arrays, reader="first")
    baseline = _screen_totals(arrays, base.recall, base.screen_reads, base.arbitration_reads)
    triaged = _screen_totals(arrays, single.recall, 1, 0)
    score = arrays.screen_score
    scored = np.flatnonzero(~np.isnan(score))
    order = scored[np.argsort(score[scored], kind="stable")]
    sorted_scores = score[order]
    # Moving a screen below the cut-off replaces its double-reading totals with the first reader's.
    change = np.vstack([np.zeros((1, 4)), np.cumsum(triaged[order] - baseline[order], axis=0)])
    cutoffs = np.unique(sorted_scores)
    below = np.searchsorted(sorted_scores, cutoffs, side="left")
    return _sweep(arrays, cutoffs, baseline.sum(axis=0) + change[below], baseline)


def safety_net_sweep(arrays: ScreenArrays) -> Sweep:
    """The safety net at every score of a cleared, completely scored screen as the cut-off."""
    base = double_reading(arrays)
    baseline = _screen_totals(arrays, base.recall, base.screen_reads, base.arbitration_reads)
    score = arrays.screen_score
    cleared = np.flatnonzero(~base.recall & ~np.isnan(score))
    order = cleared[np.argsort(score[cleared], kind="stable")]
    sorted_scores = score[order]
    added = np.column_stack([arrays.cancer[order], np.ones(len(order)), np.zeros((len(order), 2))])
    # Extra recalls at cut-off c: the cleared screens scored >= c, a suffix of the sorted scores.
    suffix = np.vstack([np.cumsum(added[::-1], axis=0)[::-1], np.zeros((1, 4))])
    cutoffs = np.unique(sorted_scores)
    at_or_above = np.searchsorted(sorted_scores, cutoffs, side="left")
    return _sweep(arrays, cutoffs, baseline.sum(axis=0) + suffix[at_or_above], baseline)


def median_split_date(arrays: ScreenArrays) -> date | None:
    if len(arrays) == 0:
        return None
    days = np.sort(arrays.day)
    return days[len(days) // 2].item()


def choose_triage_cutoff(sweep: Sweep) -> float | None:
    """TRIAGE_RULE on an earlier-period sweep; None when nothing was scored."""
    if len(sweep.cutoffs) == 0:
        return None
    short = np.flatnonzero(sweep.detected < sweep.baseline_detected)
    # The lowest cut-off equals the lowest score: every scored screen double read, so it never falls short.
    last_safe = (short[0] - 1) if len(short) else len(sweep.cutoffs) - 1
    return float(sweep.cutoffs[last_safe])


def choose_safety_net_cutoff(sweep: Sweep, *, budget_per_1000: float) -> float | None:
    """SAFETY_NET_RULE on an earlier-period sweep; None when no cut-off keeps the extra recalls within budget."""
    if budget_per_1000 < 0:
        raise ValueError("The extra recall budget cannot be negative.")
    allowed = budget_per_1000 * sweep.screens / 1000
    within = np.flatnonzero(sweep.recalls - sweep.baseline_recalls <= allowed)
    return float(sweep.cutoffs[within[0]]) if len(within) else None
