"""The strategies report's statistics: a bootstrap that resamples women (each woman's screens and both breasts move
as one block), its intervals (Wilson where a proportion sits at 0 % or 100 %), the minimum-data rules, what the
figures stand on, and the time the whole report takes for 100,000 screens. Pure Python (no database); the
hand-built SITE is described in tests/test_strategies.py."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pytest

from cases.performance.strategies import double_reading, screen_arrays
from cases.performance.strategy_report import StrategyParameters, strategies_report
from cases.performance.strategy_statistics import (
    COLUMNS,
    screen_columns,
    woman_sums,
    women_bootstrap_totals,
    women_resample_weights,
)
from inference.metrics import wilson_ci
from tests.strategy_factory import MODEL, SITE, parse_screens, report, rows_by_key, synthetic_screens

# ---- intervals, minimums and the bootstrap ------------------------------------------------------------------------


def test_it_resamples_women_with_all_their_screens_and_both_breasts():
    # w-a: three cancer screens (right breast); w-b: one screen with two malignant breasts; 20 women without cancer.
    cancer = "R  T T - T .90 M    L  F F - F .10 N"
    both = "R  T T - T .90 M    L  T T - T .90 M"
    clear = "R  F F - F .10 N    L  F F - F .10 N"
    rows = "\n".join([f"S{i} wa {cancer}" for i in (1, 2, 3)] + [f"S4 wb {both}"])
    rows += "\n" + "\n".join(f"S{i} w{i} {clear}" for i in range(5, 25))
    arrays = screen_arrays(parse_screens(rows, start=date(2023, 1, 2)), ai_threshold=0.5)
    per_woman = woman_sums(arrays, screen_columns(arrays, double_reading(arrays)))
    totals = women_bootstrap_totals(per_woman, n=2000, seed=7)
    column = {name: totals[:, i] for i, name in enumerate(COLUMNS)}
    draws_of_b = column["malignant_breasts"] - column["cancers"]  # each draw of w-b: 1 cancer screen, 2 breasts
    draws_of_a = (column["cancers"] - draws_of_b) / 3
    assert np.array_equal(draws_of_a, np.round(draws_of_a))  # w-a's three screens always move together
    assert np.array_equal(column["screens"], 3 * draws_of_a + (22 - draws_of_a))  # 22 women drawn each time
    assert len(np.unique(column["screens"])) > 3  # screen totals vary: it is not the screens being resampled
    assert np.array_equal(totals, women_bootstrap_totals(per_woman, n=2000, seed=7))  # seeded


def test_it_moves_a_womans_screens_together_in_the_reported_intervals():
    # w-a's two cancer screens: the first reader recalls one and misses the other. Drawn k times, she brings k
    # detected and k missed cancers: sensitivity is exactly 1/2 in every resample. Resampling screens would not.
    detected = "R  T T - T .90 M    L  F F - F .10 N"
    missed = "R  F T T T .90 M    L  F F F F .10 N"
    clear = "R  F F - F .10 N    L  F F - F .10 N"
    rows = f"S1 wa {detected}\nS2 wa {missed}\n" + "\n".join(f"S{i} w{i} {clear}" for i in range(3, 30))
    result = report(parse_screens(rows, start=date(2023, 1, 2)), n_bootstrap=500)
    sensitivity = rows_by_key(result["all_screens"])["first_reader"]["figures"]["sensitivity"]
    assert (sensitivity["estimate"], sensitivity["low"], sensitivity["high"]) == (1 / 2, 1 / 2, 1 / 2)


def test_it_draws_as_many_women_as_there_are_in_each_resample():
    weights = women_resample_weights(50, 300, np.random.default_rng(0))
    assert weights.shape == (300, 50) and np.all(weights.sum(axis=1) == 50)
    assert abs(weights.mean() - 1) < 0.05


def test_it_gives_bootstrap_intervals_and_wilson_at_zero_or_one_hundred_percent():
    rows = rows_by_key(report(SITE, n_bootstrap=500)["all_screens"])
    sensitivity = rows["double_reading"]["figures"]["sensitivity"]
    assert sensitivity["interval"] == "bootstrap" and sensitivity["low"] <= 3 / 4 <= sensitivity["high"]
    assert sensitivity["low"] < sensitivity["high"]
    specificity = rows["double_reading"]["figures"]["specificity"]  # 6 / 6: every resample says 100 %
    assert specificity["interval"] == "wilson" and specificity["high"] == 1.0
    assert specificity["low"] == pytest.approx(wilson_ci(6, 6)[0])
    first = rows["first_reader"]["difference_from_baseline"]["sensitivity"]
    assert first["low"] <= -1 / 4 <= first["high"] <= 0  # never better than double reading on these screens


def test_it_withholds_figures_below_the_minimums_but_keeps_the_counts():
    row = rows_by_key(
        strategies_report(SITE, model=MODEL, parameters=StrategyParameters(n_bootstrap=50))["all_screens"]
    )
    sensitivity = row["double_reading"]["figures"]["sensitivity"]
    assert sensitivity == {
        "numerator": 3,
        "denominator": 4,
        "enough": False,
        "estimate": None,
        "low": None,
        "high": None,
        "interval": None,
    }
    assert row["double_reading"]["difference_from_baseline"]["sensitivity"]["enough"] is False


def test_it_reports_what_the_figures_stand_on():
    result = report(SITE)
    assert result["population"] == {
        "screens": 10,
        "women": 8,
        "cancer_screens": 4,
        "malignant_breasts": 5,
        "breasts_with_outcome": 18,
        "screens_with_two_malignant_breasts": 1,
        "screens_without_second_read": 1,
        "arbitrated_screens": 4,
        "screens_not_fully_scored": 1,
        "first_date": "2023-01-02",
        "last_date": "2023-01-11",
    }
    assert result["model"] == {"name": "v1", "threshold": 0.5, "validated": False}


# ---- size ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_it_reports_100000_screens_in_seconds():
    screens = synthetic_screens(100_000, seed=1)
    started = time.perf_counter()
    result = strategies_report(screens, model=MODEL)  # 2,000 resamples of about 60,000 women, twice
    elapsed = time.perf_counter() - started
    assert result["population"]["screens"] == 100_000
    assert rows_by_key(result["later_period"])["double_reading"]["figures"]["sensitivity"]["enough"]
    assert elapsed < 60, f"{elapsed:.1f} s"  # about 5 s on two shared cores; a per-resample Python loop takes minutes
