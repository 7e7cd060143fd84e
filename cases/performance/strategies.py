"""Screening strategies replayed on the site's completed screens: what each way of using the AI would have decided,
from the reads, AI scores and outcomes already recorded (nothing is re-read). Plain Python and numpy; no Django.

The unit is the screen (one woman's exam, a Study) and, for the per-breast figures, the breast. Definitions a
radiologist will ask about:

- Truth. A breast is a cancer when its recorded outcome is malignant; benign and normal-at-follow-up are not. A
  screen is a cancer screen when any breast is malignant, so a woman with two affected breasts is ONE cancer screen
  (and two malignant breasts in the per-breast figures). A screen enters only with at least one breast outcome; a
  breast without an outcome still counts in the screen's recall decision but not in the per-breast figures. This is
  the performance page's rule, so the baseline here matches its programme figures.
- Recall. Readers assess and recall per breast; screening metrics are per woman-exam: a screen is recalled when any
  of its breasts is. Per screen a recalled cancer screen is a detection whichever breast was recalled (the BCSC
  definition); per breast a malignant breast is detected only when that breast was recalled.
- Today's practice (the baseline) is the recorded decision: the concordant reads, else the arbitration.
- Missing second read: the baseline stays as recorded (one read counted); "second reader alone" cannot be replayed
  for that screen, so it is left out of that one strategy (its screen count shows it) and its paired difference
  uses the baseline on the same screens.
- AI score of a breast: the highest score among its views (the selector's job); the screen's score is the higher of
  its breasts'. A screen the AI did not score completely (any imaged breast without a score) is handled as if the AI
  had not run: every AI strategy falls back to today's practice for it, as the programme would, and the number of
  such screens is shown.
- Ties: a score equal to the cut-off is high (score >= cut-off), as the platform calls predictions.
- AI as second reader: the first reader's per-breast recall against the AI's call at the model version's own
  threshold. Agreement on every breast: the first reader's decision, one read. Disagreement: the recorded
  arbitration decides where one exists; otherwise the screen is UNRESOLVED: it counts as recalled on the breasts
  either party recalled (the arbitration that would be needed is assumed to recall: the upper bound for recall and
  sensitivity), and one arbitration read is counted. Unresolved screens are counted separately, with the figures
  they would give if every one had been dismissed, so the page can show the range.
- AI triage (MASAI-like): a completely scored screen below the cut-off gets the first reader alone; the rest are
  double read as recorded.
- AI safety net: today's practice, plus recall of every screen the programme cleared whose AI score reaches the
  high cut-off (the breasts reaching it are the recalled ones). The flag goes straight to recall here; a site that
  sends flags to a lead's review first would recall fewer and read more; that review is not counted.
- Workload. Screen reads are the first and second reads (MASAI's "screen-reading workload", so its 44 % compares
  like with like). Arbitration reads (recorded, or needed for an unresolved AI disagreement) are counted apart;
  all reads is their sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

TRUTHS = ("malignant", "benign", "normal")
SIDES = ("R", "L")  # column 0 and column 1 of every per-breast array


@dataclass(frozen=True, slots=True)
class BreastRecord:
    """One imaged breast of a completed screen: the recorded recall decisions, the AI score and the outcome."""

    laterality: str  # "R" | "L"
    first_recall: bool
    second_recall: bool | None  # None: the screen has no submitted second read
    arbitration_recall: bool | None  # None: the screen was not arbitrated
    final_recall: bool  # the programme's decision for this breast (concordant reads, else the arbitration)
    ai_score: float | None  # highest score among the breast's views; None: not scored
    truth: str | None  # "malignant" | "benign" | "normal"; None: no outcome recorded for this breast

    @property
    def malignant(self) -> bool:
        return self.truth == "malignant"


@dataclass(frozen=True, slots=True)
class Screen:
    """One completed screen (a woman's exam) with at least one breast outcome."""

    woman_id: str
    study_id: int
    screen_date: date
    breasts: tuple[BreastRecord, ...]
    model_version: str | None = None  # the version whose predictions gave the AI scores; None when nothing scored

    def __post_init__(self) -> None:
        sides = [b.laterality for b in self.breasts]
        where = f"Screen of study {self.study_id}"
        if not sides or len(sides) != len(set(sides)) or not set(sides) <= set(SIDES):
            raise ValueError(f"{where}: one record per imaged breast, R and/or L (got {sides}).")
        for attribute in ("second_recall", "arbitration_recall"):
            if len({getattr(b, attribute) is None for b in self.breasts}) > 1:
                raise ValueError(f"{where}: a read covers every breast ({attribute} given for only some).")
        for breast in self.breasts:
            if breast.truth is not None and breast.truth not in TRUTHS:
                raise ValueError(f"{where}: unknown outcome {breast.truth!r}.")
            score = breast.ai_score
            if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
                raise ValueError(f"{where}: AI score {score!r} is not a probability.")
        if all(b.truth is None for b in self.breasts):
            raise ValueError(f"{where}: no breast has an outcome; only screens with an outcome are evaluated.")
        if self.model_version is None and any(b.ai_score is not None for b in self.breasts):
            raise ValueError(f"{where}: AI scores need the model version that gave them.")


@dataclass(frozen=True)
class ScreenArrays:
    """The screens as numpy arrays: one row per screen; per-breast arrays have columns R, L (see SIDES)."""

    woman: np.ndarray  # (N,) int code of the woman, 0..women-1
    women: int
    study_id: np.ndarray  # (N,) int
    day: np.ndarray  # (N,) datetime64[D]
    imaged: np.ndarray  # (N, 2) bool
    has_outcome: np.ndarray  # (N, 2) bool
    malignant: np.ndarray  # (N, 2) bool
    first: np.ndarray  # (N, 2) bool
    second: np.ndarray  # (N, 2) bool, False where there is no second read
    arbitration: np.ndarray  # (N, 2) bool, False where there is no arbitration
    final: np.ndarray  # (N, 2) bool
    has_second: np.ndarray  # (N,) bool
    has_arbitration: np.ndarray  # (N,) bool
    score: np.ndarray  # (N, 2) float, NaN where not scored or not imaged
    ai_threshold: float | None  # the model version's operating threshold (AI as second reader)

    def __len__(self) -> int:
        return len(self.study_id)

    @property
    def cancer(self) -> np.ndarray:
        return self.malignant.any(axis=1)

    @property
    def ai_complete(self) -> np.ndarray:
        """Every imaged breast has a score."""
        return ~(self.imaged & np.isnan(self.score)).any(axis=1)

    @property
    def screen_score(self) -> np.ndarray:
        """The higher breast score of a completely scored screen; NaN otherwise."""
        highest = np.where(self.imaged, np.nan_to_num(self.score, nan=-1.0), -1.0).max(axis=1)
        return np.where(self.ai_complete, highest, np.nan)

    def subset(self, mask: np.ndarray) -> ScreenArrays:
        """The screens where mask holds; women are re-coded so that only women present remain."""
        codes, woman = np.unique(self.woman[mask], return_inverse=True)
        fields = {
            name: getattr(self, name)[mask]
            for name in self.__dataclass_fields__
            if name not in ("woman", "women", "ai_threshold")
        }
        return ScreenArrays(woman=woman, women=len(codes), ai_threshold=self.ai_threshold, **fields)


def screen_arrays(screens: Sequence[Screen], *, ai_threshold: float | None) -> ScreenArrays:
    n = len(screens)
    imaged, has_outcome, malignant = (np.zeros((n, 2), bool) for _ in range(3))
    first, second, arbitration, final = (np.zeros((n, 2), bool) for _ in range(4))
    score = np.full((n, 2), np.nan)
    has_second, has_arbitration = np.zeros(n, bool), np.zeros(n, bool)
    for i, screen in enumerate(screens):
        for breast in screen.breasts:
            j = SIDES.index(breast.laterality)
            imaged[i, j] = True
            has_outcome[i, j] = breast.truth is not None
            malignant[i, j] = breast.malignant
            first[i, j] = breast.first_recall
            second[i, j] = bool(breast.second_recall)
            arbitration[i, j] = bool(breast.arbitration_recall)
            final[i, j] = breast.final_recall
            if breast.ai_score is not None:
                score[i, j] = breast.ai_score
        has_second[i] = screen.breasts[0].second_recall is not None
        has_arbitration[i] = screen.breasts[0].arbitration_recall is not None
    _, woman = np.unique(np.array([str(s.woman_id) for s in screens], dtype=object), return_inverse=True)
    return ScreenArrays(
        woman=woman.astype(np.int64),
        women=int(woman.max()) + 1 if n else 0,
        study_id=np.array([s.study_id for s in screens], dtype=np.int64),
        day=np.array([s.screen_date for s in screens], dtype="datetime64[D]"),
        imaged=imaged,
        has_outcome=has_outcome,
        malignant=malignant,
        first=first,
        second=second,
        arbitration=arbitration,
        final=final,
        has_second=has_second,
        has_arbitration=has_arbitration,
        score=score,
        ai_threshold=ai_threshold,
    )


# ---- decisions ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decisions:
    """What one strategy decides for every screen."""

    recall_breasts: np.ndarray  # (N, 2) bool
    screen_reads: np.ndarray  # (N,) int: first and second reads
    arbitration_reads: np.ndarray  # (N,) int: arbitration reads, recorded or needed
    evaluable: np.ndarray  # (N,) bool: the strategy can be replayed for this screen
    unresolved: np.ndarray  # (N,) bool: an AI-vs-reader disagreement with no recorded arbitration
    recall_if_dismissed: np.ndarray  # (N,) bool: screen recall had every unresolved disagreement been dismissed
    single_read: np.ndarray  # (N,) bool: triaged to one read
    ai_fallback: np.ndarray  # (N,) bool: not completely scored, so handled as today's practice
    ai_added: np.ndarray  # (N,) bool: recalled by the safety net alone

    @property
    def recall(self) -> np.ndarray:
        return self.recall_breasts.any(axis=1)


def _decisions(arrays: ScreenArrays, recall_breasts: np.ndarray, screen_reads, arbitration_reads, **flags) -> Decisions:
    n = len(arrays)
    recall_breasts = recall_breasts & arrays.imaged
    none = np.zeros(n, bool)
    return Decisions(
        recall_breasts=recall_breasts,
        screen_reads=np.broadcast_to(np.asarray(screen_reads, dtype=np.int64), (n,)).copy(),
        arbitration_reads=np.broadcast_to(np.asarray(arbitration_reads, dtype=np.int64), (n,)).copy(),
        evaluable=flags.get("evaluable", ~none),
        unresolved=flags.get("unresolved", none),
        recall_if_dismissed=flags.get("recall_if_dismissed", recall_breasts.any(axis=1)),
        single_read=flags.get("single_read", none),
        ai_fallback=flags.get("ai_fallback", none),
        ai_added=flags.get("ai_added", none),
    )


def double_reading(arrays: ScreenArrays) -> Decisions:
    """Today's practice as recorded: the final decision, the reads and the arbitration that happened."""
    return _decisions(arrays, arrays.final, 1 + arrays.has_second, arrays.has_arbitration)


def single_reading(arrays: ScreenArrays, *, reader: str) -> Decisions:
    """One reader alone: 'first' or 'second' (a screen without a second read is not evaluable for 'second')."""
    if reader == "first":
        return _decisions(arrays, arrays.first, 1, 0)
    if reader == "second":
        return _decisions(arrays, arrays.second, arrays.has_second.astype(np.int64), 0, evaluable=arrays.has_second)
    raise ValueError(f"Unknown reader {reader!r}: 'first' or 'second'.")


def ai_second_reader(arrays: ScreenArrays) -> Decisions:
    """First reader + the AI at the model's threshold; disagreements resolved by the recorded arbitration if any."""
    baseline = double_reading(arrays)
    if arrays.ai_threshold is None:
        scored = np.zeros(len(arrays), bool)
        ai_call = np.zeros_like(arrays.first)
    else:
        scored = arrays.ai_complete
        ai_call = np.nan_to_num(arrays.score, nan=-1.0) >= arrays.ai_threshold
    disagree = scored & ((arrays.first != ai_call) & arrays.imaged).any(axis=1)
    resolved = disagree & arrays.has_arbitration
    unresolved = disagree & ~arrays.has_arbitration
    recall = np.where(resolved[:, None], arrays.arbitration, arrays.first)
    recall = np.where(unresolved[:, None], arrays.first | ai_call, recall)
    recall = np.where(scored[:, None], recall, baseline.recall_breasts) & arrays.imaged
    dismissed = np.where(unresolved, (arrays.first & ai_call & arrays.imaged).any(axis=1), recall.any(axis=1))
    return _decisions(
        arrays,
        recall,
        np.where(scored, 1, baseline.screen_reads),
        np.where(scored, disagree.astype(np.int64), baseline.arbitration_reads),
        unresolved=unresolved,
        recall_if_dismissed=dismissed,
        ai_fallback=~scored,
    )


def ai_triage(arrays: ScreenArrays, *, cutoff: float) -> Decisions:
    """MASAI-like: a completely scored screen below the cut-off gets the first reader alone; the rest as recorded."""
    baseline = double_reading(arrays)
    scored = arrays.ai_complete
    low = scored & (np.nan_to_num(arrays.screen_score, nan=np.inf) < cutoff)
    return _decisions(
        arrays,
        np.where(low[:, None], arrays.first, baseline.recall_breasts),
        np.where(low, 1, baseline.screen_reads),
        np.where(low, 0, baseline.arbitration_reads),
        single_read=low,
        ai_fallback=~scored,
    )


def ai_safety_net(arrays: ScreenArrays, *, cutoff: float) -> Decisions:
    """Today's practice, plus recall of each cleared, completely scored screen with a breast at or above the cut-off."""
    baseline = double_reading(arrays)
    scored = arrays.ai_complete
    cleared = ~baseline.recall & scored
    flagged_breasts = cleared[:, None] & (np.nan_to_num(arrays.score, nan=-1.0) >= cutoff) & arrays.imaged
    return _decisions(
        arrays,
        baseline.recall_breasts | flagged_breasts,
        baseline.screen_reads,
        baseline.arbitration_reads,
        ai_added=flagged_breasts.any(axis=1),
        ai_fallback=~scored,
    )


@dataclass(frozen=True)
class StrategySpec:
    key: str
    label: str
    description: str


BASELINE = StrategySpec("double_reading", "Double reading (today)", "Independent double reading with arbitration.")
FIXED_STRATEGIES = (
    BASELINE,
    StrategySpec("first_reader", "First reader alone", "Single reading by the first reader."),
    StrategySpec("second_reader", "Second reader alone", "Single reading by the second reader."),
    StrategySpec(
        "ai_second_reader",
        "AI as second reader",
        "First reader + AI at the model's threshold; disagreements go to arbitration.",
    ),
)
TRIAGE = StrategySpec("ai_triage", "AI triage", "Screens scored below the cut-off single read, the rest double read.")
SAFETY_NET = StrategySpec(
    "ai_safety_net", "AI safety net", "Double reading, plus recall of cleared screens scored at or above the cut-off."
)


def fixed_decisions(arrays: ScreenArrays, key: str) -> Decisions:
    """The decisions of a strategy that needs no cut-off chosen on the site's data."""
    if key == "double_reading":
        return double_reading(arrays)
    if key == "first_reader":
        return single_reading(arrays, reader="first")
    if key == "second_reader":
        return single_reading(arrays, reader="second")
    if key == "ai_second_reader":
        return ai_second_reader(arrays)
    raise ValueError(f"Unknown strategy {key!r}.")
