"""Screening strategies replayed on recorded reads, AI scores and outcomes: every figure of a hand-built set checked
against values worked out by hand, the cut-off rules and the date split (the statistics: test_strategy_statistics.py).

Pure Python (no database). The hand-built set SITE: 10 screens of 8 women, AI threshold 0.5. Per breast R / L:
first read, second read, arbitration (- none), final decision, AI score (- none), outcome (M malignant, B benign,
N normal, ? none).

S1  w1  R  T T - T .90 M    L  F F - F .10 N    cancer found by everyone
S2  w2  R  T F T T .80 M    L  F T T T .70 M    two affected breasts, readers disagree, arbitration recalls both
S3  w3  R  F T T T .30 M    L  F F F F .20 N    first reader misses, second reader and arbitration recall
S4  w4  R  F F F F .05 N    L  T F F F .60 B    first reader recalls a benign breast, arbitration clears it
S5  w5  R  F F - F .50 N    L  F F - F .05 N    score exactly at the AI threshold (a tie: positive)
S6  w6  R  F - - F .40 N    L  F - - F .40 N    no second read
S7  w7  R  T F F F .50 N    L  F F F F  -  N    left breast not scored: AI strategies fall back to double reading
S8  w8  R  F F - F .95 M    L  F F - F .05 N    cancer both readers missed
S9  w1  R  F F - F .40 N                        w1's second screen, one breast imaged; .40 ties S6
S10 w5  R  F F - F .15 ?    L  F F - F .20 N    w5's second screen, right breast without an outcome

10 screens, 4 cancer screens (S1 S2 S3 S8), 6 without; 5 malignant breasts, 13 breasts with a benign/normal outcome.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from cases.performance.strategies import BreastRecord, Screen, ai_safety_net, ai_triage, screen_arrays
from cases.performance.strategy_cutoffs import (
    choose_safety_net_cutoff,
    choose_triage_cutoff,
    safety_net_sweep,
    triage_sweep,
)
from cases.performance.strategy_report import StrategyParameters, strategies_report
from cases.performance.strategy_statistics import Minimums
from tests.strategy_factory import (
    MODEL,
    SITE,
    SITE_ROWS,
    estimates,
    parse_screens,
    report,
    rows_by_key,
    synthetic_screens,
)

# ---- every strategy on every screen: exact figures ----------------------------------------------------------------


def test_it_reproduces_double_reading_as_recorded():
    row = rows_by_key(report(SITE)["all_screens"])["double_reading"]
    assert estimates(row) == {
        "sensitivity": 3 / 4,  # S1 S2 S3 recalled; S8 missed
        "specificity": 6 / 6,
        "recall_rate": 3 / 10,
        "cancer_detection_per_1000": 1000 * 3 / 10,
        "ppv_of_recall": 3 / 3,
        "screen_reads_per_1000": 1000 * 19 / 10,  # nine screens read twice, S6 once
        "arbitration_reads_per_1000": 1000 * 4 / 10,  # S2 S3 S4 S7
        "all_reads_per_1000": 1000 * 23 / 10,
        "breast_sensitivity": 4 / 5,  # S8's right breast missed
        "breast_specificity": 13 / 13,
    }
    assert row["counts"]["cancers"] == 4  # S2's two malignant breasts are one cancer screen
    assert row["counts"]["malignant_breasts"] == 5
    assert row["counts"]["women"] == 8
    assert all(
        d["estimate"] == 0 and d["low"] == 0 and d["high"] == 0 for d in row["difference_from_baseline"].values()
    )


def test_it_replays_the_first_reader_alone():
    row = rows_by_key(report(SITE)["all_screens"])["first_reader"]
    assert estimates(row) == {
        "sensitivity": 2 / 4,  # S1 S2; S3 and S8 missed
        "specificity": 4 / 6,  # S4 and S7 recalled
        "recall_rate": 4 / 10,
        "cancer_detection_per_1000": 1000 * 2 / 10,
        "ppv_of_recall": 2 / 4,
        "screen_reads_per_1000": 1000 * 10 / 10,
        "arbitration_reads_per_1000": 0.0,
        "all_reads_per_1000": 1000 * 10 / 10,
        "breast_sensitivity": 2 / 5,  # S1 R, S2 R (S2 L was not recalled by the first reader)
        "breast_specificity": 11 / 13,
    }
    counts = row["counts"]
    assert (counts["cancers_gained"], counts["cancers_lost"]) == (0, 1)  # S3
    assert (counts["recalls_added"], counts["recalls_removed"]) == (2, 1)  # S4 S7 added, S3 removed
    assert row["difference_from_baseline"]["sensitivity"]["estimate"] == 2 / 4 - 3 / 4


def test_it_leaves_screens_without_a_second_read_out_of_second_reader_alone_only():
    row = rows_by_key(report(SITE)["all_screens"])["second_reader"]
    assert row["counts"]["screens"] == 9 and row["counts"]["not_evaluable"] == 1  # S6
    assert estimates(row) == {
        "sensitivity": 3 / 4,  # S1 S2 S3
        "specificity": 5 / 5,
        "recall_rate": 3 / 9,
        "cancer_detection_per_1000": 1000 * 3 / 9,
        "ppv_of_recall": 3 / 3,
        "screen_reads_per_1000": 1000 * 9 / 9,
        "arbitration_reads_per_1000": 0.0,
        "all_reads_per_1000": 1000 * 9 / 9,
        "breast_sensitivity": 3 / 5,  # S1 R, S2 L, S3 R
        "breast_specificity": 11 / 11,
    }
    # Paired with double reading on the same nine screens: 18 screen reads there, so 1,000 fewer per 1,000.
    difference = row["difference_from_baseline"]
    assert difference["screen_reads_per_1000"]["estimate"] == 1000 * 9 / 9 - 1000 * 18 / 9
    assert difference["recall_rate"]["estimate"] == 0.0


def test_it_replays_the_ai_as_second_reader_with_unresolved_disagreements_shown_apart():
    row = rows_by_key(report(SITE)["all_screens"])["ai_second_reader"]
    # Agree: S1 S3 S4 S6 S9 S10 (first reader decides). Disagree: S2 (arbitration recalls both breasts), S5 (AI at
    # the 0.5 tie, no arbitration) and S8 (AI flags the missed cancer, no arbitration): S5 and S8 unresolved and
    # counted as recalled. S7 is not fully scored: double reading as recorded.
    assert estimates(row) == {
        "sensitivity": 3 / 4,  # S1 S2 S8; S3 lost (the first reader and the AI both cleared it)
        "specificity": 4 / 6,  # S4 S5 recalled
        "recall_rate": 5 / 10,
        "cancer_detection_per_1000": 1000 * 3 / 10,
        "ppv_of_recall": 3 / 5,
        "screen_reads_per_1000": 1000 * 11 / 10,  # one read each, S7 two
        "arbitration_reads_per_1000": 1000 * 4 / 10,  # S2, S5, S8, and S7's recorded one
        "all_reads_per_1000": 1000 * 15 / 10,
        "breast_sensitivity": 4 / 5,  # S1 R, S2 R+L, S8 R
        "breast_specificity": 11 / 13,  # S4 L, S5 R recalled
    }
    counts = row["counts"]
    assert (counts["unresolved"], counts["unresolved_cancers"], counts["ai_fallback"]) == (2, 1, 1)
    # Had both unresolved disagreements been dismissed: S1 S2 S4 recalled, S1 S2 detected.
    assert (counts["recalls_if_unresolved_dismissed"], counts["detected_if_unresolved_dismissed"]) == (3, 2)
    assert (counts["cancers_gained"], counts["cancers_lost"]) == (1, 1)  # S8 gained, S3 lost


def test_it_triages_below_the_cutoff_and_double_reads_ties_and_unscored_screens():
    arrays = screen_arrays(SITE, ai_threshold=MODEL.threshold)
    at_040 = ai_triage(arrays, cutoff=0.40)
    # Below 0.40: S3 (.30) and S10 (.20). S6 and S9 score exactly .40: double read. S7 not fully scored.
    assert arrays.study_id[at_040.single_read].tolist() == [3, 10]
    assert arrays.study_id[at_040.ai_fallback].tolist() == [7]
    assert at_040.recall.sum() == 2 and at_040.screen_reads.sum() == 17 and at_040.arbitration_reads.sum() == 3
    at_041 = ai_triage(arrays, cutoff=0.41)
    assert arrays.study_id[at_041.single_read].tolist() == [3, 6, 9, 10]
    assert at_041.screen_reads.sum() == 16  # S6 had one read already


def test_it_adds_the_safety_net_to_cleared_screens_at_or_above_the_cutoff():
    arrays = screen_arrays(SITE, ai_threshold=MODEL.threshold)
    net = ai_safety_net(arrays, cutoff=0.5)
    # Cleared and fully scored with a breast >= .5: S4 (L .60), S5 (R .50, a tie) and S8 (R .95, the missed cancer).
    # S7's right breast scores .50 but its left breast has no score: not used.
    assert arrays.study_id[net.ai_added].tolist() == [4, 5, 8]
    assert net.recall_breasts[arrays.study_id.tolist().index(4)].tolist() == [False, True]  # the flagged breast
    assert net.screen_reads.sum() == 19 and net.arbitration_reads.sum() == 4  # the flag itself is not a read


def test_it_measures_triage_and_safety_net_exactly_in_the_report():
    later_copy = parse_screens(SITE_ROWS, start=date(2023, 7, 3), id_offset=100)
    result = report(SITE + later_copy, split_date=date(2023, 6, 1), extra_recall_budget_per_1000=250)
    assert result["split"]["rule"] == "Split date given with the request."
    # Chosen on the earlier copy (see the sweep tests): triage 0.30, safety net 0.60. In the later copy S3 scores
    # exactly 0.30, a tie: double read; only S10 is single read. The safety net flags S4 (.60, a tie) and S8.
    assert (result["cutoffs"]["ai_triage"]["cutoff"], result["cutoffs"]["ai_safety_net"]["cutoff"]) == (0.30, 0.60)
    rows = rows_by_key(result["later_period"])
    assert rows["ai_triage"]["counts"]["single_read"] == 1
    assert estimates(rows["ai_triage"]) == {
        "sensitivity": 3 / 4,
        "specificity": 6 / 6,
        "recall_rate": 3 / 10,
        "cancer_detection_per_1000": 1000 * 3 / 10,
        "ppv_of_recall": 3 / 3,
        "screen_reads_per_1000": 1000 * 18 / 10,
        "arbitration_reads_per_1000": 1000 * 4 / 10,
        "all_reads_per_1000": 1000 * 22 / 10,
        "breast_sensitivity": 4 / 5,
        "breast_specificity": 13 / 13,
    }
    assert (
        rows["ai_safety_net"]["counts"]["ai_added_recalls"],
        rows["ai_safety_net"]["counts"]["ai_added_cancers"],
    ) == (
        2,
        1,
    )
    assert estimates(rows["ai_safety_net"]) == {
        "sensitivity": 4 / 4,
        "specificity": 5 / 6,
        "recall_rate": 5 / 10,
        "cancer_detection_per_1000": 1000 * 4 / 10,
        "ppv_of_recall": 4 / 5,
        "screen_reads_per_1000": 1000 * 19 / 10,
        "arbitration_reads_per_1000": 1000 * 4 / 10,
        "all_reads_per_1000": 1000 * 23 / 10,
        "breast_sensitivity": 5 / 5,
        "breast_specificity": 12 / 13,
    }
    assert rows["ai_safety_net"]["difference_from_baseline"]["recall_rate"]["estimate"] == 5 / 10 - 3 / 10


# ---- sweeps and the cut-off rules ---------------------------------------------------------------------------------


def test_it_sweeps_triage_exactly_and_chooses_before_the_first_lost_cancer():
    sweep = triage_sweep(screen_arrays(SITE, ai_threshold=MODEL.threshold))
    assert sweep.cutoffs.tolist() == [0.20, 0.30, 0.40, 0.50, 0.60, 0.80, 0.90, 0.95]
    assert sweep.detected.tolist() == [3, 3, 2, 2, 2, 2, 2, 2]  # S3 (.30) lost once the cut-off passes it
    assert sweep.recalls.tolist() == [3, 3, 2, 2, 2, 3, 3, 3]  # S4's benign recall returns from .80
    assert sweep.screen_reads.tolist() == [19, 18, 17, 16, 15, 14, 13, 12]
    assert choose_triage_cutoff(sweep) == 0.30


def test_it_keeps_the_triage_cutoff_below_a_lost_cancer_even_when_one_is_regained_higher():
    # S4's first reader recall made malignant: at .80 triage regains the count, but .40 already lost S3.
    rows = SITE_ROWS.replace("L  T F F F .60 B", "L  T F F F .60 M")
    sweep = triage_sweep(screen_arrays(parse_screens(rows, start=date(2023, 1, 2)), ai_threshold=0.5))
    assert sweep.detected.tolist() == [3, 3, 2, 2, 2, 3, 3, 3]
    assert sweep.baseline_detected == 3
    assert choose_triage_cutoff(sweep) == 0.30


def test_it_sweeps_the_safety_net_and_chooses_the_lowest_cutoff_within_the_recall_budget():
    sweep = safety_net_sweep(screen_arrays(SITE, ai_threshold=MODEL.threshold))
    assert sweep.cutoffs.tolist() == [0.20, 0.40, 0.50, 0.60, 0.95]
    assert (sweep.recalls - sweep.baseline_recalls).tolist() == [6, 5, 3, 2, 1]
    assert sweep.detected.tolist() == [4, 4, 4, 4, 4]
    assert choose_safety_net_cutoff(sweep, budget_per_1000=250) == 0.60  # 2.5 extra recalls allowed on 10 screens
    assert choose_safety_net_cutoff(sweep, budget_per_1000=300) == 0.50  # 3 allowed
    assert choose_safety_net_cutoff(sweep, budget_per_1000=50) is None  # even the top flag is 1 > 0.5


def test_it_chooses_cutoffs_on_the_earlier_period_and_reports_them_on_the_later_one():
    # The later copy moves S3 to .25: choosing there would give .25; the earlier period chose .30, which now
    # sends S3 to single reading, and the later figures show that cancer lost.
    later_screens = parse_screens(SITE_ROWS, start=date(2023, 7, 3), id_offset=100, scores={("S3", "R"): 0.25})
    assert choose_triage_cutoff(triage_sweep(screen_arrays(later_screens, ai_threshold=0.5))) == 0.25
    result = report(SITE + later_screens, extra_recall_budget_per_1000=250)
    assert result["split"]["date"] == "2023-07-03"  # the median date: ten screens before it, ten from it
    assert result["split"]["earlier"]["screens"] == 10 and result["split"]["later"]["screens"] == 10
    triage, net = result["cutoffs"]["ai_triage"], result["cutoffs"]["ai_safety_net"]
    assert (triage["cutoff"], triage["chosen_on"], triage["reported_on"]) == (0.30, "earlier", "later")
    assert triage["earlier_figures"]["detected"] == 3 and triage["earlier_figures"]["screen_reads"] == 18
    assert net["cutoff"] == 0.60
    rows = rows_by_key(result["later_period"])
    assert rows["ai_triage"]["counts"]["single_read"] == 2  # S3 (.25) and S10 (.20)
    assert rows["ai_triage"]["figures"]["sensitivity"]["estimate"] == 2 / 4
    assert rows["ai_triage"]["counts"]["cancers_lost"] == 1
    assert rows["ai_safety_net"]["counts"]["ai_added_recalls"] == 2  # S4 (.60, a tie) and S8 (.95)
    assert rows["ai_safety_net"]["figures"]["sensitivity"]["estimate"] == 4 / 4
    assert result["sweeps"]["ai_triage"]["earlier"]["chosen_cutoff"] == 0.30


def test_it_makes_no_choice_without_enough_earlier_data():
    result = report(SITE, minimums=Minimums(cancers=10, non_cancers=1, screens=1, recalls=1))
    assert result["cutoffs"]["ai_triage"]["cutoff"] is None
    assert "not enough data" in result["cutoffs"]["ai_triage"]["not_chosen_reason"]
    assert [row["key"] for row in result["later_period"]["strategies"]] == [
        "double_reading",
        "first_reader",
        "second_reader",
        "ai_second_reader",
    ]


def test_it_agrees_with_the_strategies_at_every_swept_cutoff():
    arrays = screen_arrays(synthetic_screens(400, seed=3), ai_threshold=0.5)
    triage, net = triage_sweep(arrays), safety_net_sweep(arrays)
    for i in range(0, len(triage.cutoffs), 17):
        decisions = ai_triage(arrays, cutoff=float(triage.cutoffs[i]))
        assert triage.detected[i] == (decisions.recall & arrays.cancer).sum()
        assert triage.recalls[i] == decisions.recall.sum()
        assert triage.screen_reads[i] == decisions.screen_reads.sum()
    for i in range(0, len(net.cutoffs), 3):
        decisions = ai_safety_net(arrays, cutoff=float(net.cutoffs[i]))
        assert net.detected[i] == (decisions.recall & arrays.cancer).sum()
        assert net.recalls[i] == decisions.recall.sum()


# ---- bad input ----------------------------------------------------------------------------------------------------


def breast(**changes) -> BreastRecord:
    return dataclasses.replace(BreastRecord("R", False, False, None, False, 0.1, "normal"), **changes)


@pytest.mark.parametrize(
    ("breasts", "version", "message"),
    [
        ((breast(), breast()), "v1", "one record per imaged breast"),
        ((breast(ai_score=1.5),), "v1", "not a probability"),
        ((breast(ai_score=float("nan")),), "v1", "not a probability"),
        ((breast(truth=None),), "v1", "no breast has an outcome"),
        ((breast(truth="cancer"),), "v1", "unknown outcome"),
        ((breast(), breast(laterality="L", second_recall=None)), "v1", "a read covers every breast"),
        ((breast(),), None, "need the model version"),
    ],
)
def test_it_refuses_inconsistent_records(breasts, version, message):
    with pytest.raises(ValueError, match=message):
        Screen("w", 1, date(2023, 1, 1), breasts, version)


def test_it_refuses_scores_of_another_model_version():
    other = dataclasses.replace(SITE[0], model_version="v2")
    with pytest.raises(ValueError, match="one model version"):
        strategies_report([other, *SITE[1:]], model=MODEL)


def test_it_answers_with_no_screens():
    result = strategies_report([], model=None, parameters=StrategyParameters(n_bootstrap=10))
    assert result["population"]["screens"] == 0
    assert all(not f["enough"] for row in result["all_screens"]["strategies"] for f in row["figures"].values())
