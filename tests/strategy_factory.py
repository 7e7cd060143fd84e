"""Screening-strategy records for tests: the hand-built site SITE (see tests/test_strategies.py for its table and
the figures worked out by hand) and a synthetic screening population for size and consistency checks."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from cases.performance.strategies import BreastRecord, Screen
from cases.performance.strategy_report import ModelInfo, StrategyParameters, strategies_report
from cases.performance.strategy_statistics import Minimums

MODEL = ModelInfo(name="v1", threshold=0.5, validated=False)
NO_MINIMUMS = Minimums(cancers=1, non_cancers=1, screens=1, recalls=1)
TRUTH = {"M": "malignant", "B": "benign", "N": "normal", "?": None}
FLAG = {"T": True, "F": False, "-": None}

SITE_ROWS = """
S1  w1  R  T T - T .90 M    L  F F - F .10 N
S2  w2  R  T F T T .80 M    L  F T T T .70 M
S3  w3  R  F T T T .30 M    L  F F F F .20 N
S4  w4  R  F F F F .05 N    L  T F F F .60 B
S5  w5  R  F F - F .50 N    L  F F - F .05 N
S6  w6  R  F - - F .40 N    L  F - - F .40 N
S7  w7  R  T F F F .50 N    L  F F F F  -  N
S8  w8  R  F F - F .95 M    L  F F - F .05 N
S9  w1  R  F F - F .40 N
S10 w5  R  F F - F .15 ?    L  F F - F .20 N
"""


def parse_screens(rows: str, *, start: date, id_offset: int = 0, scores: dict | None = None) -> list[Screen]:
    """One Screen per row of the table above, a day apart from `start`; `scores` overrides (screen, side) scores."""
    screens = []
    for day, line in enumerate(r for r in rows.strip().splitlines() if r.strip()):
        name, woman, *cells = line.split()
        breasts = []
        for i in range(0, len(cells), 7):
            side, first, second, arbitration, final, score, truth = cells[i : i + 7]
            score = (scores or {}).get((name, side), None if score == "-" else float(score))
            breasts.append(
                BreastRecord(side, FLAG[first], FLAG[second], FLAG[arbitration], FLAG[final], score, TRUTH[truth])
            )
        number = int(name[1:]) + id_offset
        screens.append(Screen(woman, number, start + timedelta(days=day), tuple(breasts), MODEL.name))
    return screens


SITE = parse_screens(SITE_ROWS, start=date(2023, 1, 2))


def report(screens, **parameters):
    parameters = {"minimums": NO_MINIMUMS, "n_bootstrap": 200} | parameters
    return strategies_report(screens, model=MODEL, parameters=StrategyParameters(**parameters))


def rows_by_key(table):
    return {row["key"]: row for row in table["strategies"]}


def estimates(row) -> dict:
    return {key: figure["estimate"] for key, figure in row["figures"].items()}


def synthetic_screens(n: int, *, seed: int) -> list[Screen]:
    """A screening population: about 6 cancers per 1,000 breasts-at-risk, readers at about 80 % sensitivity and
    3 % recall, an AI that scores cancers higher, 2 % of screens without a second read, 1 % unscored breasts."""
    rng = np.random.default_rng(seed)
    malignant = rng.random((n, 2)) < 0.003
    truth = np.where(malignant, "malignant", np.where(rng.random((n, 2)) < 0.01, "benign", "normal"))
    score = np.where(malignant, rng.beta(5, 2, (n, 2)), rng.beta(1, 8, (n, 2)))
    unscored = rng.random((n, 2)) < 0.01
    first = rng.random((n, 2)) < np.where(malignant, 0.8, 0.015)
    second = rng.random((n, 2)) < np.where(malignant, 0.8, 0.015)
    has_second = rng.random(n) > 0.02
    arbitration_recall = rng.random((n, 2)) < 0.5
    women = rng.integers(0, int(n * 0.7) + 1, n)
    days = rng.integers(0, 900, n)
    screens = []
    for i in range(n):
        arbitrated = bool(has_second[i] and (first[i] != second[i]).any())
        breasts = tuple(
            BreastRecord(
                side,
                bool(first[i, j]),
                bool(second[i, j]) if has_second[i] else None,
                bool(arbitration_recall[i, j] and (first[i, j] or second[i, j])) if arbitrated else None,
                bool(arbitration_recall[i, j] and (first[i, j] or second[i, j])) if arbitrated else bool(first[i, j]),
                None if unscored[i, j] else float(score[i, j]),
                str(truth[i, j]),
            )
            for j, side in enumerate("RL")
        )
        screens.append(Screen(f"w{women[i]}", i, date(2021, 1, 1) + timedelta(days=int(days[i])), breasts, "v1"))
    return screens
