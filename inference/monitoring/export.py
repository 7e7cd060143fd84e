"""A model's monitoring series as CSV and JSON for the site's governance group (safe to open in a spreadsheet)."""

from __future__ import annotations

import csv
import io
import json

from inference.inventory.export import _cell

CSV_COLUMNS = [
    "day", "in_baseline", "predictions", "studies", "views_per_exam", "score_mean", "psi", "ks_statistic",
    "ks_p_value", "flagged_studies", "flag_rate", "cusum_upper", "cusum_lower", "agreement_breast",
    "agreement_study", "sensitivity", "malignant_breasts", "unseen_equipment", "manufacturers", "model_names",
    "software_versions", "computed_at",
]  # fmt: skip


def _mix(counts: dict) -> str:
    return "; ".join(f"{name}: {count}" for name, count in (counts or {}).items())


def monitoring_csv(series: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for day in series["days"]:
        record = {
            **day,
            "malignant_breasts": day["outcomes"].get("malignant_breasts"),
            "unseen_equipment": "; ".join(f"{u['field']}={u['value']}" for u in day["unseen_equipment"]),
            "manufacturers": _mix(day["inputs"].get("manufacturer")),
            "model_names": _mix(day["inputs"].get("model_name")),
            "software_versions": _mix(day["inputs"].get("software_version")),
        }
        writer.writerow([_cell(record[column]) for column in CSV_COLUMNS])
    return out.getvalue()


def monitoring_json(series: dict) -> str:
    return json.dumps(series, indent=2)
