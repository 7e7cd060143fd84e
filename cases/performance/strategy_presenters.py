"""What the strategies page, its exports and the API show of a stored report: formatting only, no statistics."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from cases.models import StrategyReport

NOT_ENOUGH = "not enough data"
SCREEN_COLUMNS = (
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("recall_rate", "Recall rate"),
    ("cancer_detection_per_1000", "Cancers per 1,000"),
    ("ppv_of_recall", "PPV of recall"),
    ("screen_reads_per_1000", "Screen reads per 1,000"),
    ("arbitration_reads_per_1000", "Arbitrations per 1,000"),
)
BREAST_COLUMNS = (("breast_sensitivity", "Sensitivity per breast"), ("breast_specificity", "Specificity per breast"))
# The page's answer first: the figures a programme decides on, each strategy against double reading.
SUMMARY_COLUMNS = (
    ("sensitivity", "Sensitivity"),
    ("recall_rate", "Recall rate"),
    ("cancer_detection_per_1000", "Cancers per 1,000"),
    ("screen_reads_per_1000", "Screen reads per 1,000"),
)
# The cut-off sweeps (strategy_plots), each drawn only where a curve has something to show.
PLOTS = (
    (
        "triage",
        "ai_triage",
        "AI triage: sensitivity and recall rate against screen reads per 1,000 screens, one point per cut-off",
    ),
    (
        "safety-net",
        "ai_safety_net",
        "AI safety net: sensitivity against recall rate, and recall rate by cut-off",
    ),
)
MIN_PLOT_POINTS = 2
TABLES = (("later_period", "Later period"), ("all_screens", "All screens"))


def _number(value: float, key: str, *, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if key.endswith("_per_1000"):
        decimals = 1 if key == "cancer_detection_per_1000" else 0
        return f"{value:{sign},.{decimals}f}".replace("-", "−")
    return f"{100 * value:{sign}.1f}".replace("-", "−")


def _unit(key: str, *, difference: bool = False) -> str:
    if key.endswith("_per_1000"):
        return ""
    return " pp" if difference else " %"


def _cell(figure: dict, difference: dict, key: str, *, baseline: bool) -> dict:
    if not figure["enough"]:
        return {"enough": False, "value": NOT_ENOUGH, "basis": f"{figure['numerator']:,} / {figure['denominator']:,}"}
    cell = {
        "enough": True,
        "value": _number(figure["estimate"], key) + _unit(key),
        "ci": f"95 % CI {_number(figure['low'], key)}–{_number(figure['high'], key)}"
        if figure["low"] is not None
        else "",
        "wilson": figure["interval"] == "wilson",
        "basis": f"{figure['numerator']:,} / {figure['denominator']:,}",
    }
    if not baseline and difference["enough"]:
        cell["difference"] = _number(difference["estimate"], key, signed=True) + _unit(key, difference=True)
        if difference["low"] is not None:
            low, high = _number(difference["low"], key, signed=True), _number(difference["high"], key, signed=True)
            cell["difference_ci"] = f"({low} to {high})"
    return cell


def _notes(row: dict, figures: dict) -> list[str]:
    """What a radiologist needs to read the row right."""
    counts = {key: f"{value:,}" for key, value in row["counts"].items()}
    raw, notes = row["counts"], []
    if raw["not_evaluable"]:
        notes.append(f"{counts['not_evaluable']} screens without a second read left out of this strategy.")
    if raw["ai_fallback"] and row["key"].startswith("ai_"):
        notes.append(f"{counts['ai_fallback']} screens not fully scored by the AI: replayed as double reading.")
    if raw["single_read"]:
        notes.append(f"{counts['single_read']} screens triaged to one read.")
    if raw["ai_added_recalls"]:
        notes.append(
            f"{counts['ai_added_recalls']} recalls added by the AI ({counts['ai_added_cancers']} of them cancers)."
        )
    if raw["unresolved"]:
        notes.append(
            f"{counts['unresolved']} AI–reader disagreements without a recorded arbitration "
            f"({counts['unresolved_cancers']} cancers): counted as recalled and as one arbitration read each. "
            f"Had all been dismissed: {counts['detected_if_unresolved_dismissed']} of {counts['cancers']} cancers "
            f"found, {counts['recalls_if_unresolved_dismissed']} recalls of {counts['screens']} screens."
        )
    if row["key"] != figures["baseline"] and (raw["cancers_gained"] or raw["cancers_lost"]):
        notes.append(
            f"Against double reading: {counts['cancers_gained']} cancers found that it missed, "
            f"{counts['cancers_lost']} missed that it found."
        )
    return notes


def _rows(figures: dict, table: str, columns) -> list[dict]:
    rows = []
    for row in figures[table]["strategies"]:
        baseline = row["key"] == figures["baseline"]
        rows.append(
            {
                "key": row["key"],
                "label": row["label"],
                "description": row["description"],
                "baseline": baseline,
                "screens": f"{row['counts']['screens']:,}",
                "cancers": f"{row['counts']['cancers']:,}",
                "women": row["counts"]["women"],
                "cells": [
                    _cell(row["figures"][key], row["difference_from_baseline"][key], key, baseline=baseline)
                    for key, _ in columns
                ],
                "notes": _notes(row, figures),
            }
        )
    return rows


def _day_before(iso: str | None) -> str | None:
    return (date.fromisoformat(iso) - timedelta(days=1)).isoformat() if iso else None


def _counts_shown(population: dict) -> dict:
    """Counts with thousands separators, dates as they are."""
    return {key: f"{value:,}" if isinstance(value, int) else value for key, value in population.items()}


def _curve_worth_drawing(curve: dict, minimums: dict) -> bool:
    """A sweep is a curve only with at least two cut-offs, and means something only over the numbers of cancers and
    screens the tables ask of a figure (below them the tables say "not enough data": a chart must not say more)."""
    return (
        len(set(curve["cutoffs"])) >= MIN_PLOT_POINTS
        and curve["cancers"] >= minimums.get("cancers", 0)
        and curve["screens"] >= minimums.get("screens", 0)
    )


def strategy_plots_shown(report: StrategyReport) -> list[dict]:
    """The sweeps' charts worth drawing: a plot where at least one period's curve is."""
    minimums = (report.parameters or {}).get("minimums", {})
    sweeps = report.figures.get("sweeps", {})
    return [
        {"name": name, "alt": alt}
        for name, key, alt in PLOTS
        if any(_curve_worth_drawing(curve, minimums) for curve in sweeps.get(key, {}).values())
    ]


def strategies_page_context(report: StrategyReport) -> dict:
    figures = report.figures
    split = figures["split"]
    return {
        "summary_columns": [label for _, label in SUMMARY_COLUMNS],
        "summary_rows": _rows(figures, "later_period", SUMMARY_COLUMNS),
        "plots": strategy_plots_shown(report),
        "population": _counts_shown(figures["population"]),
        "earlier": _counts_shown(split["earlier"]),
        "later": _counts_shown(split["later"]),
        "report": report,
        "figures": figures,
        "screen_columns": [label for _, label in SCREEN_COLUMNS],
        "breast_columns": [label for _, label in BREAST_COLUMNS],
        "tables": [
            {
                "key": key,
                "title": title,
                "rows": _rows(figures, key, SCREEN_COLUMNS),
                "breast_rows": _rows(figures, key, BREAST_COLUMNS),
            }
            for key, title in TABLES
        ],
        "earlier_to": _day_before(split["date"]),
        "cutoffs": figures["cutoffs"],
        "excluded": sorted(figures.get("excluded_studies", {}).items()),
    }


def strategy_report_document(report: StrategyReport) -> dict:
    """The report as the JSON export and the API give it."""
    version = report.model_version
    return {
        "id": report.pk,
        "status": report.status,
        "trigger": report.trigger,
        "requested_at": report.requested_at.isoformat(),
        "data_read_at": report.started_at.isoformat() if report.started_at else None,
        "computed_at": report.finished_at.isoformat() if report.finished_at else None,
        "duration_ms": report.duration_ms,
        "model_version": (
            {"name": version.name, "threshold": version.threshold, "validation": version.validation.as_dict()}
            if version
            else None
        ),
        "parameters": report.parameters,
        "figures": report.figures,
    }


def strategy_report_state_document(report: StrategyReport | None) -> dict | None:
    """A queued, computing or failed report: no figures."""
    if report is None:
        return None
    return {
        "id": report.pk,
        "status": report.status,
        "requested_at": report.requested_at.isoformat(),
        "error_message": report.error_message or None,
    }


CSV_HEADER = [
    "report_id",
    "computed_at",
    "model_version",
    "model_validated",
    "table",
    "period_from",
    "period_to",
    "strategy",
    "cutoff",
    "metric",
    "estimate",
    "ci_low",
    "ci_high",
    "interval",
    "numerator",
    "denominator",
    "enough_data",
    "difference_from_double_reading",
    "difference_ci_low",
    "difference_ci_high",
]


def _text(value: str) -> str:
    """A name a spreadsheet would run as a formula gets an apostrophe (CSV injection); numbers stay numbers."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def strategy_report_csv(report: StrategyReport) -> str:
    """One line per table, strategy and figure (proportions as fractions, rates per 1,000 screens)."""
    figures = report.figures
    model = figures.get("model") or {}
    periods = {
        "all_screens": (figures["population"]["first_date"], figures["population"]["last_date"]),
        "later_period": (figures["split"]["later"]["first_date"], figures["split"]["later"]["last_date"]),
    }
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for table, _ in TABLES:
        for row in figures[table]["strategies"]:
            cutoff = figures["cutoffs"].get(row["key"], {}).get("cutoff")
            for metric, figure in row["figures"].items():
                difference = row["difference_from_baseline"][metric]
                writer.writerow(
                    [
                        report.pk,
                        report.finished_at.isoformat() if report.finished_at else "",
                        _text(model.get("name", "")),
                        model.get("validated", ""),
                        table,
                        *periods[table],
                        row["key"],
                        "" if cutoff is None else cutoff,
                        metric,
                        *("" if figure[k] is None else figure[k] for k in ("estimate", "low", "high", "interval")),
                        figure["numerator"],
                        figure["denominator"],
                        figure["enough"],
                        *("" if difference[k] is None else difference[k] for k in ("estimate", "low", "high")),
                    ]
                )
    return out.getvalue()
