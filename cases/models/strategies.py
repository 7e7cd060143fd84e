"""Stored computations of the screening-strategies report (cases.performance.strategy_report): pages and the API
show a stored one and never compute it. One row per computation; the newest succeeded row is the one shown, older
rows stay as the record of what the figures were."""

from django.conf import settings
from django.db import models


class StrategyReport(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Computing"
        SUCCEEDED = "succeeded", "Computed"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        OUTCOME = "outcome", "An outcome was recorded"
        REQUEST = "request", "Asked for by a lead radiologist"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The model version whose scores the AI strategies replay (the active one when requested); None: no model.
    model_version = models.ForeignKey(
        "inference.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # As StrategyParameters.as_dict() writes them (split date, extra recall budget, resamples, seed, minimums).
    parameters = models.JSONField(default=dict)
    figures = models.JSONField(default=dict, blank=True)
    triage_png = models.BinaryField(blank=True, default=b"")
    safety_net_png = models.BinaryField(blank=True, default=b"")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True, help_text="Shown to users.")
    error_detail = models.TextField(blank=True, help_text="For engineers: exception and traceback.")

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Strategies report {self.pk} ({self.status})"
