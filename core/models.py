"""Worker processes and the transactional outbox."""

from django.db import models
from django.db.models import Q


class Worker(models.Model):
    """A running Celery worker process and its last heartbeat (core.workers): how the health check and the study
    page know whether work can progress, and how work held by a dead process is found."""

    name = models.CharField(max_length=200, unique=True)  # host:pid
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen"]
        db_table = "inference_worker"  # where it was made, before it moved here (migration core 0001)

    def __str__(self) -> str:
        return self.name


class OutboxMessage(models.Model):
    """One asynchronous step the platform has asked for (an analysis, building result objects, a delivery, a
    report computation), recorded in the same transaction as the change that asks for it (core.outbox).

    The status says where the work is: recorded and not yet handed to the broker (pending, possibly due later),
    in the broker (sent), taken by a worker process (running), finished (done) or given up with the reason
    (failed). Each hand-over to the broker is a dispatch; the Celery task id names the message and the dispatch,
    so what a worker reports about an older dispatch never overwrites a newer one."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "In the queue"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    UNFINISHED = (Status.PENDING, Status.SENT, Status.RUNNING)

    key = models.CharField(max_length=200, unique=True, help_text="What the work is about, e.g. inference-job:12.")
    task = models.CharField(max_length=200, help_text="The Celery task that does it.")
    kwargs = models.JSONField(default=dict)
    description = models.CharField(max_length=300, help_text="What it is, for people.")
    # Which study it concerns ("study:12"), for the study page; empty for work about no one study.
    subject = models.CharField(max_length=100, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    send_after = models.DateTimeField(help_text="Not sent before this time (a delayed step or a retry's backoff).")
    dispatches = models.PositiveIntegerField(default=0, help_text="Times handed to the broker.")
    send_failures = models.PositiveIntegerField(default=0, help_text="Times the broker could not be reached.")
    last_error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="The process running it (host:pid).")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["send_after", "pk"]
        indexes = [
            models.Index(fields=["status", "send_after"], name="outbox_due"),
            models.Index(fields=["status", "updated_at"], name="outbox_unfinished", condition=~Q(status="done")),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"

    @property
    def task_id_prefix(self) -> str:
        return f"outbox-{self.pk}-"
