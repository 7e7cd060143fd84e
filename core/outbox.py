"""The transactional outbox: the one way the platform asks for asynchronous work.

A step that must happen later (analyse an image, build the DICOM result objects, deliver one to the archive,
compute the strategies report) is recorded as an OutboxMessage in the same transaction as the change that asks
for it, so the two commit or roll back together: work can never be asked for by a change that did not happen, nor
lost because the broker was down at the moment of asking. After the commit the message is handed to the broker at
once (when it is due); what could not be handed over, what the broker lost, and what a dead worker process held
are sent again by one sweep (Celery beat, every OUTBOX_SWEEP_SECONDS; also `manage.py outbox_sweep`).

Every task that runs from the outbox must be idempotent (tasks take ids, lock their rows and check their state):
a message may run more than once, never at the same time twice while its process is alive. The task's state is
kept on the message by core.outbox_tracking (Celery signals), so one place lists what is pending, running, or
failed with the reason (the operations page, its API and /healthz).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.models import OutboxMessage
from core.workers import alive_since

logger = logging.getLogger(__name__)
Status = OutboxMessage.Status

_TASK_ID = re.compile(r"^outbox-(?P<pk>\d+)-(?P<dispatch>\d+)$")


def outbox_task_id(message: OutboxMessage, dispatch: int) -> str:
    return f"outbox-{message.pk}-{dispatch}"


def outbox_parse_task_id(task_id: str | None) -> tuple[int, int] | None:
    """(message id, dispatch) of a task sent by the outbox; None for any other task."""
    match = _TASK_ID.match(task_id or "")
    return (int(match["pk"]), int(match["dispatch"])) if match else None


def outbox_enqueue(
    *,
    key: str,
    task: str,
    kwargs: dict,
    description: str,
    subject: str = "",
    send_after: datetime | None = None,
) -> OutboxMessage:
    """Ask for a step: record it (in the caller's transaction) and hand it to the broker after the commit.

    One message per key: asking again for work that is already waiting updates it (a later `send_after` delays it,
    which is how a study's report waits for the study to be stable), and asking again for work that has finished,
    failed or is running opens it again (it runs once more; tasks are idempotent)."""
    now = timezone.now()
    due = send_after or now
    # One statement whether the message is new or known (INSERT ... ON CONFLICT DO UPDATE): asking is part of the
    # transaction of every upload and every analysis.
    [message] = OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                key=key, task=task, kwargs=kwargs, description=description[:300], subject=subject,
                status=Status.PENDING, send_after=due, finished_at=None, created_at=now, updated_at=now,
            )
        ],
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=["task", "kwargs", "description", "subject", "status", "send_after", "finished_at", "updated_at"],
    )  # fmt: skip
    if message.pk is None:  # a database whose upsert does not return the row's key
        message = OutboxMessage.objects.get(key=key)
    if due <= now:
        message_id = message.pk
        # robust: whatever happens while sending never undoes or fails the committed change that asked for it.
        transaction.on_commit(lambda: outbox_relay(ids=[message_id]), robust=True)
    return message


def outbox_relay(*, ids: list[int] | None = None, limit: int = 500) -> int:
    """Hand due pending messages to the broker; returns how many were sent. A broker that cannot be reached is
    recorded on the message and logged, never raised: the sweep sends it once the broker answers again."""
    now = timezone.now()
    due = OutboxMessage.objects.filter(status=Status.PENDING, send_after__lte=now)
    if ids is not None:
        due = due.filter(pk__in=ids)
    sent = 0
    for message in due.order_by("send_after", "pk")[:limit]:
        dispatch = message.dispatches + 1
        # Taken by one relay only (a conditional update, the same on SQLite and PostgreSQL), and marked sent
        # before the broker has it: the worker may start it before this function returns.
        taken = OutboxMessage.objects.filter(
            pk=message.pk, status=Status.PENDING, dispatches=message.dispatches
        ).update(
            status=Status.SENT, dispatches=dispatch, sent_at=timezone.now(), started_at=None, worker="", updated_at=now
        )
        if not taken:
            continue
        try:
            current_app.send_task(message.task, kwargs=message.kwargs, task_id=outbox_task_id(message, dispatch))
        except Exception as exc:  # noqa: BLE001  (any broker or network failure)
            OutboxMessage.objects.filter(pk=message.pk, status=Status.SENT, dispatches=dispatch).update(
                status=Status.PENDING,
                dispatches=dispatch - 1,
                send_failures=message.send_failures + 1,
                last_error=f"The queue (broker) could not be reached: {exc}"[:2000],
                updated_at=timezone.now(),
            )
            logger.warning(
                "Could not send %s (%s); the outbox sweep sends it later: %s", message.key, message.task, exc
            )
            break  # the broker is away: the others would fail the same way
        sent += 1
    return sent


def outbox_sweep() -> dict[str, int]:
    """The one sweep: send again what was lost and what a dead process held, then send everything due.

    - sent, never started, for OUTBOX_LOST_AFTER_SECONDS while the broker's queue is empty (the broker lost it with
      its data), or for OUTBOX_STALE_SECONDS in any case;
    - running in a process that stopped beating for WORKER_HEARTBEAT_TIMEOUT (killed, out of memory): the broker
      would hand it back only after its visibility timeout;
    - pending and due: never handed over (the broker was down), or due now (a delayed step, a backoff)."""
    now = timezone.now()
    lost_cutoff = now - timedelta(seconds=settings.OUTBOX_LOST_AFTER_SECONDS)
    stale_cutoff = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    lost = Q(status=Status.SENT, sent_at__lt=stale_cutoff)
    if OutboxMessage.objects.filter(status=Status.SENT, sent_at__lt=lost_cutoff).exists() and _queue_empty():
        lost |= Q(status=Status.SENT, sent_at__lt=lost_cutoff)
    from core.models import Worker

    alive = Worker.objects.filter(last_seen__gte=alive_since()).values("name")
    orphaned = Q(status=Status.RUNNING, started_at__lt=alive_since()) & ~Q(worker__in=alive)
    reopened = 0
    for message in OutboxMessage.objects.filter(lost | orphaned):
        reason = (
            f"Sent again: its worker process {message.worker} stopped while running it."
            if message.status == Status.RUNNING
            else "Sent again: the queue lost it (never started)."
        )
        reopened += OutboxMessage.objects.filter(
            pk=message.pk, status=message.status, dispatches=message.dispatches
        ).update(status=Status.PENDING, send_after=now, last_error=reason, updated_at=now)
        logger.warning("%s: %s", message.key, reason)
    return {"reopened": reopened, "sent": outbox_relay()}


def outbox_retry(*, message_id: int) -> OutboxMessage:
    """A person asks for failed work to be tried again."""
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(pk=message_id)
        return outbox_enqueue(
            key=message.key, task=message.task, kwargs=message.kwargs, description=message.description,
            subject=message.subject,
        )  # fmt: skip


def outbox_attention(*, subject: str | None = None):
    """Messages that need a person's attention: failed, or unfinished past OUTBOX_OVERDUE_SECONDS after they were
    due (the broker or the workers are away)."""
    overdue = timezone.now() - timedelta(seconds=settings.OUTBOX_OVERDUE_SECONDS)
    found = OutboxMessage.objects.filter(
        Q(status=Status.FAILED) | Q(status__in=OutboxMessage.UNFINISHED, send_after__lt=overdue)
    )
    if subject is not None:
        found = found.filter(subject=subject)
    return found.order_by("-updated_at")


def outbox_counts() -> dict[str, int]:
    """For /healthz: failed messages, and unfinished ones overdue."""
    overdue = timezone.now() - timedelta(seconds=settings.OUTBOX_OVERDUE_SECONDS)
    return {
        "failed": OutboxMessage.objects.filter(status=Status.FAILED).count(),
        "overdue": OutboxMessage.objects.filter(status__in=OutboxMessage.UNFINISHED, send_after__lt=overdue).count(),
    }


def _queue_empty() -> bool:
    """Whether the broker's queue holds no message (False when that cannot be told)."""
    try:
        with current_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            declared = conn.default_channel.queue_declare(queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True)
            return declared.message_count == 0
    except Exception as exc:  # noqa: BLE001  (broker away or queue not declared yet)
        logger.info("Could not count the broker's queue: %s", exc)
        return False
