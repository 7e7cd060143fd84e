"""The strategies report: every strategy's figures on the site's completed screens, the cut-offs chosen on the
earlier period and the figures they give on the later one, and the sweeps to plot. Plain Python; no Django. The
result is a JSON-ready dict (numbers, strings, lists and None only), stored and served as it is.

Two tables:
- "all screens": the strategies that need no cut-off from the site's data (double reading, each reader alone, AI
  as second reader at the model version's own threshold, which was chosen on the model's validation data);
- "later period": every strategy, triage and safety net at the cut-offs chosen on the earlier period, all on the
  same later screens so that the rows compare and the differences are paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np

from cases.performance.strategies import (
    BASELINE,
    FIXED_STRATEGIES,
    SAFETY_NET,
    TRIAGE,
    Screen,
    ScreenArrays,
    ai_safety_net,
    ai_triage,
    double_reading,
    fixed_decisions,
    screen_arrays,
)
from cases.performance.strategy_cutoffs import (
    DEFAULT_EXTRA_RECALL_BUDGET_PER_1000,
    PLOT_SAFETY_NET_EXTRA_RECALLS_PER_1000,
    SAFETY_NET_RULE,
    SPLIT_RULE,
    TRIAGE_RULE,
    Sweep,
    choose_safety_net_cutoff,
    choose_triage_cutoff,
    median_split_date,
    safety_net_sweep,
    triage_sweep,
)
from cases.performance.strategy_statistics import METRICS, Minimums, compare_strategies
from inference.metrics import DEFAULT_BOOTSTRAP

METHOD_VERSION = 1  # bump when a definition changes, so stored reports say which definitions they used


@dataclass(frozen=True)
class ModelInfo:
    """The model version whose scores the AI strategies replay."""

    name: str
    threshold: float  # its operating point: "AI as second reader" calls a breast positive at score >= threshold
    validated: bool  # whether it is validated for screening use (its card says so)


@dataclass(frozen=True)
class StrategyParameters:
    split_date: date | None = None  # None: the median screen date
    extra_recall_budget_per_1000: float = DEFAULT_EXTRA_RECALL_BUDGET_PER_1000
    n_bootstrap: int = DEFAULT_BOOTSTRAP
    seed: int = 0
    minimums: Minimums = field(default_factory=Minimums)

    def __post_init__(self) -> None:
        if self.n_bootstrap < 1:
            raise ValueError("n_bootstrap must be at least 1.")
        if not 0 <= self.extra_recall_budget_per_1000 <= 1000:
            raise ValueError("The extra recall budget is per 1,000 screens: 0 to 1,000.")

    def as_dict(self) -> dict:
        values = asdict(self)
        values["split_date"] = self.split_date.isoformat() if self.split_date else None
        return values

    @classmethod
    def from_dict(cls, values: dict) -> StrategyParameters:
        """The inverse of as_dict(); missing keys take their defaults."""
        values = dict(values)
        if values.get("split_date"):
            values["split_date"] = date.fromisoformat(values["split_date"])
        if "minimums" in values:
            values["minimums"] = Minimums(**values["minimums"])
        return cls(**values)


def population(arrays: ScreenArrays) -> dict:
    """What a period's figures stand on."""
    days = arrays.day
    return {
        "screens": len(arrays),
        "women": arrays.women,
        "cancer_screens": int(arrays.cancer.sum()),
        "malignant_breasts": int(arrays.malignant.sum()),
        "breasts_with_outcome": int(arrays.has_outcome.sum()),
        "screens_with_two_malignant_breasts": int((arrays.malignant.sum(axis=1) == 2).sum()),
        "screens_without_second_read": int((~arrays.has_second).sum()),
        "arbitrated_screens": int(arrays.has_arbitration.sum()),
        "screens_not_fully_scored": int((~arrays.ai_complete).sum()),
        "first_date": days.min().item().isoformat() if len(days) else None,
        "last_date": days.max().item().isoformat() if len(days) else None,
    }


def _enough_to_choose(arrays: ScreenArrays, minimums: Minimums) -> bool:
    scored = int(arrays.ai_complete.sum())
    return len(arrays) >= minimums.screens and scored >= minimums.screens and arrays.cancer.sum() >= minimums.cancers


def _at(sweep: Sweep, cutoff: float | None) -> dict | None:
    """The earlier period's point figures at the chosen cut-off: what the choice saw."""
    if cutoff is None:
        return None
    i = int(np.searchsorted(sweep.cutoffs, cutoff))
    return {
        "screens": sweep.screens,
        "cancers": sweep.cancers,
        "detected": int(sweep.detected[i]),
        "recalls": int(sweep.recalls[i]),
        "screen_reads": int(sweep.screen_reads[i]),
        "baseline_detected": sweep.baseline_detected,
        "baseline_recalls": sweep.baseline_recalls,
        "baseline_screen_reads": sweep.baseline_screen_reads,
    }


def _safety_net_reason(reason: str | None, sweep: Sweep) -> str:
    if reason:
        return reason
    if len(sweep.cutoffs) == 0:
        return "the earlier period has no cleared, fully scored screen for the safety net to act on"
    return "no cut-off keeps the extra recalls within the budget"


def strategies_report(
    screens: Sequence[Screen], *, model: ModelInfo | None, parameters: StrategyParameters | None = None
) -> dict:
    parameters = parameters or StrategyParameters()
    versions = {s.model_version for s in screens if s.model_version is not None}
    if versions and (model is None or versions != {model.name}):
        raise ValueError(
            f"The AI scores come from {sorted(versions)}; a report is about one model version "
            f"({model.name if model else 'none given'})."
        )
    arrays = screen_arrays(screens, ai_threshold=model.threshold if model else None)
    minimums = parameters.minimums
    stats = {"minimums": minimums, "n_bootstrap": parameters.n_bootstrap, "seed": parameters.seed}

    all_baseline = double_reading(arrays)
    all_table = compare_strategies(
        arrays, [(spec, fixed_decisions(arrays, spec.key)) for spec in FIXED_STRATEGIES], all_baseline, **stats
    )

    split = parameters.split_date or median_split_date(arrays)
    if split is None:  # no screens at all
        earlier = later = arrays
    else:
        earlier = arrays.subset(arrays.day < np.datetime64(split, "D"))
        later = arrays.subset(arrays.day >= np.datetime64(split, "D"))

    triage_cutoff = safety_cutoff = None
    triage_earlier, safety_earlier = triage_sweep(earlier), safety_net_sweep(earlier)
    enough = _enough_to_choose(earlier, minimums)
    if enough:
        triage_cutoff = choose_triage_cutoff(triage_earlier)
        safety_cutoff = choose_safety_net_cutoff(
            safety_earlier, budget_per_1000=parameters.extra_recall_budget_per_1000
        )
    reason = None if enough else "not enough data in the earlier period to choose a cut-off"

    later_baseline = double_reading(later)
    later_strategies = [(spec, fixed_decisions(later, spec.key)) for spec in FIXED_STRATEGIES]
    if triage_cutoff is not None:
        later_strategies.append((TRIAGE, ai_triage(later, cutoff=triage_cutoff)))
    if safety_cutoff is not None:
        later_strategies.append((SAFETY_NET, ai_safety_net(later, cutoff=safety_cutoff)))
    later_table = compare_strategies(later, later_strategies, later_baseline, **stats)
    triage_later, safety_later = triage_sweep(later), safety_net_sweep(later)

    budget = parameters.extra_recall_budget_per_1000
    return {
        "method_version": METHOD_VERSION,
        "model": asdict(model) if model else None,
        "parameters": parameters.as_dict(),
        "baseline": BASELINE.key,
        "metrics": [{"key": m.key, "label": m.label, "proportion": m.proportion, "scale": m.scale} for m in METRICS],
        "population": population(arrays),
        "all_screens": {"strategies": all_table},
        "split": {
            "date": split.isoformat() if split else None,
            "rule": SPLIT_RULE if parameters.split_date is None else "Split date given with the request.",
            "earlier": population(earlier),
            "later": population(later),
        },
        "cutoffs": {
            TRIAGE.key: {
                "cutoff": triage_cutoff,
                "rule": TRIAGE_RULE,
                "chosen_on": "earlier",
                "reported_on": "later",
                "not_chosen_reason": reason if triage_cutoff is None else None,
                "earlier_figures": _at(triage_earlier, triage_cutoff),
            },
            SAFETY_NET.key: {
                "cutoff": safety_cutoff,
                "rule": SAFETY_NET_RULE.format(budget=budget),
                "chosen_on": "earlier",
                "reported_on": "later",
                "not_chosen_reason": _safety_net_reason(reason, safety_earlier) if safety_cutoff is None else None,
                "earlier_figures": _at(safety_earlier, safety_cutoff),
            },
        },
        "later_period": {"strategies": later_table},
        "sweeps": {
            TRIAGE.key: {
                "earlier": triage_earlier.as_dict(chosen=triage_cutoff),
                "later": triage_later.as_dict(chosen=triage_cutoff),
            },
            SAFETY_NET.key: {
                period: sweep.as_dict(
                    chosen=safety_cutoff, max_extra_recalls_per_1000=PLOT_SAFETY_NET_EXTRA_RECALLS_PER_1000
                )
                for period, sweep in (("earlier", safety_earlier), ("later", safety_later))
            },
        },
    }
