"""The inventory as CSV and JSON for the site's governance group (safe to open in a spreadsheet)."""

from __future__ import annotations

import csv
import io
import json

from inference.inventory.selectors import inventory_record

CSV_COLUMNS = [
    "id", "name", "kind", "version", "vendor", "runtime", "status", "is_active", "validated", "validation",
    "published_validation", "licence", "intended_use", "operating_point", "file_sha256", "imported_by",
    "imported_via", "imported_at", "status_changed_at", "activated_at", "ms_per_image", "gives_heatmap",
    "status_changes", "last_change",
]  # fmt: skip


def _cell(value) -> str:
    """Text that a spreadsheet would run as a formula is prefixed with an apostrophe (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def inventory_csv(versions) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for version in versions:
        record = inventory_record(version)
        history = record.pop("history")
        last = history[-1] if history else None
        record["status_changes"] = len(history)
        record["last_change"] = (
            f"{last['at']} {last['from'] or '-'} -> {last['to']} by {last['by']}: {last['reason']}" if last else ""
        )
        writer.writerow([_cell(record[column]) for column in CSV_COLUMNS])
    return out.getvalue()


def inventory_json(versions) -> str:
    return json.dumps({"models": [inventory_record(version) for version in versions]}, indent=2)
