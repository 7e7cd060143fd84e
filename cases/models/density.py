"""The AI's breast density estimate of a study (the active density model's), made once the study is stable."""

from django.db import models


class StudyDensity(models.Model):
    """One density model's estimate for one study: per exam and per breast, or why it could not be made."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Estimated"
        FAILED = "failed", "Could not be estimated"

    study = models.ForeignKey("cases.Study", on_delete=models.PROTECT, related_name="density_estimates")
    model_version = models.ForeignKey("inference.ModelVersion", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    # The images it read (their ids, sorted): a later image makes a new estimate.
    content_key = models.CharField(max_length=64)
    scale = models.CharField(max_length=12, blank=True, help_text="'birads' (a-d) or 'mini-mias' (F/G/D).")
    category = models.CharField(max_length=2, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="inference.density DensityResult.as_dict().")
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["study", "model_version", "content_key"], name="one_density_per_content")
        ]

    def __str__(self) -> str:
        return f"Study {self.study_id}: {self.category or self.status}"

    @property
    def succeeded(self) -> bool:
        return self.status == self.Status.SUCCEEDED
