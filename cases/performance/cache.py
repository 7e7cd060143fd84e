"""The performance figures' cache: computed once per state of the data they rest on, kept under a fingerprint of
that data, so that a view never shows figures older than the data and the next view after a change computes them
again (cases.performance.performance uses it for the performance page and its ROC image)."""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache
from django.db import connection

from cases.models import Outcome, Read, Study, StudyDensity
from inference.models import InferenceJob, ModelVersion, Prediction

logger = logging.getLogger(__name__)

CACHE_SECONDS = 7 * 24 * 60 * 60  # figures of a given state of the data never go stale; this only frees the cache
CACHE_VERSION = 3  # raise when the cached dataclasses or the way figures are computed change


def data_fingerprint() -> str:
    """What the figures rest on, in one query: every write that can change a figure changes one of these values.

    - Outcomes: recorded (a new id) or corrected (recorded_at is auto_now); the count catches a deletion.
    - Reads: a submission sets submitted_at, and nothing changes a submitted read (its recall is fixed); reads,
      like predictions, are never deleted (PROTECT, no delete anywhere, read-only in the admin).
    - Analyses: a new job (a new id) makes another prediction, or none, an image's current one; only jobs waiting
      for a model are ever deleted (when a model is activated), hence their count. A job's created_at never changes.
    - Predictions: one per job, written once (a new id).
    - Final decisions: final_recall is set with finalised_at (study_transition) and never changed after.
    - AI density estimates: written once (a new id); the active density model (a model activated changes which
      estimates count): the newest status change of any model.
    Every term is an index lookup (the ids, and the timestamps indexed by migration 0010) or a count over a small
    set (outcomes; waiting jobs through the status index): a few milliseconds at 100,000 studies, never a scan of
    the predictions or the reads."""
    tables = {
        "outcome": Outcome._meta.db_table,
        "read": Read._meta.db_table,
        "job": InferenceJob._meta.db_table,
        "prediction": Prediction._meta.db_table,
        "study": Study._meta.db_table,
        "density": StudyDensity._meta.db_table,
        "model": ModelVersion._meta.db_table,
    }
    sql = """
        SELECT
            (SELECT COUNT(*) FROM {outcome}), (SELECT MAX(id) FROM {outcome}), (SELECT MAX(recorded_at) FROM {outcome}),
            (SELECT MAX(id) FROM {read}), (SELECT MAX(submitted_at) FROM {read}),
            (SELECT MAX(id) FROM {job}), (SELECT COUNT(*) FROM {job} WHERE status = %s),
            (SELECT MAX(id) FROM {prediction}),
            (SELECT MAX(finalised_at) FROM {study}),
            (SELECT MAX(id) FROM {density}), (SELECT MAX(status_changed_at) FROM {model})
    """.format(**tables)
    with connection.cursor() as cursor:
        cursor.execute(sql, [InferenceJob.Status.WAITING_FOR_MODEL])
        row = cursor.fetchone()
    return hashlib.sha256(repr(row).encode()).hexdigest()


def cached(what: tuple, compute):
    """compute() once per state of the data; a cache that cannot be reached only costs the computation."""
    key = f"performance:{CACHE_VERSION}:{':'.join(map(str, what))}:{data_fingerprint()}"
    try:
        hit = cache.get(key, default=_MISSING)
    except Exception as exc:  # noqa: BLE001 (the page must not depend on the cache)
        logger.warning("Performance cache unavailable (%s): computing the figures.", exc)
        return compute()
    if hit is not _MISSING:
        return hit
    value = compute()
    try:
        cache.set(key, value, CACHE_SECONDS)
    except Exception as exc:  # noqa: BLE001
        logger.warning("Performance figures not cached (%s).", exc)
    return value


_MISSING = object()
