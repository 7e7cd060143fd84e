"""Each outbox message follows its task (core.outbox): Celery's task signals, in the worker process that runs it.

- started: running, in this process (not when another live process already runs it: a duplicate delivery);
- finished: done; raised: failed, with the error; asked to retry: back in the queue, with the reason.

Only the dispatch named by the task id is changed, and only while it is still the message's current one: what a
process reports about work that was asked for again since (the message reopened, a newer dispatch sent) is
ignored. Tasks sent by anything but the outbox are left alone."""

from __future__ import annotations

import logging

from celery.signals import task_postrun, task_prerun
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from core.models import OutboxMessage, Worker
from core.outbox import outbox_parse_task_id
from core.workers import alive_since, worker_name

logger = logging.getLogger(__name__)
Status = OutboxMessage.Status


@task_prerun.connect
def _task_started(task_id=None, **_kwargs) -> None:
    parsed = outbox_parse_task_id(task_id)
    if parsed is None:
        return
    pk, dispatch = parsed
    alive = Worker.objects.filter(last_seen__gte=alive_since()).values("name")
    # Redelivered after its process died (running, in a process that no longer beats): taken over.
    takeable = Q(status=Status.SENT) | (Q(status=Status.RUNNING) & ~Q(worker__in=alive))
    try:
        OutboxMessage.objects.filter(takeable, pk=pk, dispatches=dispatch).update(
            status=Status.RUNNING, worker=worker_name(), started_at=timezone.now(), updated_at=timezone.now()
        )
    except DatabaseError:
        logger.exception("Outbox message %s: could not record its start", pk)


@task_postrun.connect
def _task_finished(task_id=None, state=None, retval=None, **_kwargs) -> None:
    parsed = outbox_parse_task_id(task_id)
    if parsed is None:
        return
    pk, dispatch = parsed
    now = timezone.now()
    mine = OutboxMessage.objects.filter(pk=pk, dispatches=dispatch, status=Status.RUNNING, worker=worker_name())
    try:
        if state == "SUCCESS":
            mine.update(status=Status.DONE, finished_at=now, last_error="", updated_at=now)
        elif state == "FAILURE":
            mine.update(status=Status.FAILED, finished_at=now, last_error=_describe(retval), updated_at=now)
        else:  # RETRY (the retry is in the broker already), REJECTED, IGNORED: back in the queue's hands
            mine.update(status=Status.SENT, sent_at=now, last_error=_describe(retval), updated_at=now)
    except DatabaseError:
        logger.exception("Outbox message %s: could not record how it ended (%s)", pk, state)


def _describe(value) -> str:
    if value is None:
        return ""
    cause = getattr(value, "exc", None) or value  # celery.exceptions.Retry carries the error in .exc
    return f"{type(cause).__name__}: {cause}"[:2000]
