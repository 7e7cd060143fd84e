"""Storage reconciliation: the files in the store against the rows that point at them.

It works on either backend (core.storage: a folder, or an object store's bucket) and on the incoming
folder of the host where it runs. Two kinds of trouble are found:
- unreferenced files: no row points at them (a web worker killed mid-upload leaves its streamed file in incoming/;
  a process killed between writing a file and committing its row leaves the file). They are removed, but only
  once older than a grace period, so that an upload still in progress is never touched;
- missing files: a row points at a file that is not there (a disk restored from an older backup, a file deleted
  by hand). They are reported, never "fixed": an engineer decides.

`manage.py reconcile_storage` runs it by hand (--dry-run to only report); Celery beat runs it every
STORAGE_RECONCILE_SECONDS. Each run that removes something is audited.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings

from audit.services import audit_record
from cases.models import DicomResultObject, Image, Letter
from core import storage
from inference.models import Prediction

logger = logging.getLogger(__name__)

# Where rows keep storage names: (model, fields). Whatever keeps files in the store adds itself here.
REFERENCES: list[tuple[type, tuple[str, ...]]] = [
    (Image, ("original", "preview", "working_image", "viewer_pixels")),
    (Prediction, ("heatmap", "overlay")),
    (DicomResultObject, ("file",)),  # the AI results as DICOM (cases.dicom.results)
    (Letter, ("pdf_name",)),  # the women's result letters (cases.letters)
]
REPORTED = 50  # names listed in a report or an audit row; the counts are always complete


@dataclass
class Reconciliation:
    files_seen: int = 0
    unreferenced: list[str] = field(default_factory=list)  # older than the grace period
    recent_unreferenced: int = 0  # younger: left alone (an upload may be in progress)
    missing: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bytes_removed: int = 0

    def summary(self) -> str:
        return (
            f"{self.files_seen} file(s) in the store; {len(self.unreferenced)} unreferenced past the grace period "
            f"({len(self.removed)} removed, {self.bytes_removed / 1e6:.1f} MB), {self.recent_unreferenced} recent "
            f"unreferenced left alone; {len(self.missing)} referenced but missing."
        )


def referenced_names() -> set[str]:
    names: set[str] = set()
    for model, fields in REFERENCES:
        # Every row, through the base manager: a default manager may leave rows out (shadow predictions), and their
        # files are kept all the same.
        for row in model._base_manager.values_list(*fields).iterator(chunk_size=5000):
            names.update(name for name in row if name)
    return names


def storage_reconcile(*, grace_seconds: int | None = None, delete: bool = True) -> Reconciliation:
    """Compare the store (either backend) and this host's incoming folder with the rows; remove unreferenced files
    older than `grace_seconds` (default STORAGE_RECONCILE_GRACE_SECONDS) unless `delete` is False. Returns what was
    found and done."""
    grace = settings.STORAGE_RECONCILE_GRACE_SECONDS if grace_seconds is None else grace_seconds
    result = Reconciliation()
    # The rows first: a file written after this snapshot is younger than any sensible grace period.
    referenced = referenced_names()
    cutoff = time.time() - grace
    present: set[str] = set()
    for stored in storage.listing():
        result.files_seen += 1
        present.add(stored.name)
        if stored.name in referenced:
            continue
        if stored.modified > cutoff:
            result.recent_unreferenced += 1
            continue
        result.unreferenced.append(stored.name)
        if delete and _still_unreferenced(stored.name):
            storage.delete(stored.name)
            result.removed.append(stored.name)
            result.bytes_removed += stored.size
    # Uploads that a killed web worker left half-received (never referenced by a row).
    for name, path in storage.incoming_leftovers():
        result.files_seen += 1
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # moved into place or removed meanwhile
        if stat.st_mtime > cutoff:
            result.recent_unreferenced += 1
            continue
        result.unreferenced.append(name)
        if delete:
            path.unlink(missing_ok=True)
            result.removed.append(name)
            result.bytes_removed += stat.st_size
    result.missing = sorted(referenced - present)
    if result.removed or result.missing:
        logger.warning("Storage reconciliation (%s): %s", storage.describe(), result.summary())
    if result.removed:
        audit_record(
            action="storage.reconciled",
            details={
                "removed": len(result.removed),
                "bytes_removed": result.bytes_removed,
                "removed_names": result.removed[:REPORTED],
                "missing": len(result.missing),
                "missing_names": result.missing[:REPORTED],
                "grace_seconds": grace,
            },
        )
    return result


def _still_unreferenced(name: str) -> bool:
    """Checked again just before removing: a row may have been committed since the snapshot."""
    return not any(model.objects.filter(**{f: name}).exists() for model, fields in REFERENCES for f in fields)
