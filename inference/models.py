"""Model registry, inference jobs and predictions."""

from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    name = models.CharField(max_length=100, unique=True)
    backbone = models.CharField(max_length=20)  # b0 | b2 | b3, or 'custom' for a small test network
    input_size = models.PositiveIntegerField()
    file = models.CharField(max_length=500, help_text="Path of the model file inside MODEL_DIR.")
    file_sha256 = models.CharField(max_length=64)
    preprocessing_version = models.CharField(max_length=20)
    # Operating point on the calibrated probability, chosen on validation data.
    threshold = models.FloatField(default=0.5)
    # Calibration of the model's logit: p = sigmoid(calibration_scale * logit + calibration_bias) (Platt scaling;
    # temperature scaling is calibration_bias = 0). Identity by default.
    calibration_scale = models.FloatField(default=1.0)
    calibration_bias = models.FloatField(default=0.0)
    metrics = models.JSONField(default=dict, blank=True)
    card = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.backbone}, {self.input_size}px)"

    @property
    def validation(self):
        """Its sealed-test figures and whether it is validated (inference.serving.validation)."""
        from inference.serving.validation import model_validation

        if "_validation" not in self.__dict__:
            self.__dict__["_validation"] = model_validation(self.card)
        return self.__dict__["_validation"]


class InferenceJob(models.Model):
    """One analysis of one image; status changes only through InferenceJob.transition()."""

    class Status(models.TextChoices):
        WAITING_FOR_MODEL = "waiting", "Waiting: no active model"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ALLOWED = {
        Status.WAITING_FOR_MODEL: {Status.QUEUED},
        Status.QUEUED: {Status.RUNNING, Status.FAILED},
        # RUNNING -> RUNNING: a redelivered task after a worker died mid-task takes the job over.
        Status.RUNNING: {Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.QUEUED},
        Status.FAILED: {Status.QUEUED},
        Status.SUCCEEDED: set(),
    }

    image = models.ForeignKey("cases.Image", on_delete=models.PROTECT, related_name="jobs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    error_message = models.TextField(blank=True, help_text="Shown to users.")
    error_detail = models.TextField(blank=True, help_text="For engineers: exception and traceback.")
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker started it.")
    interruptions = models.PositiveIntegerField(
        default=0, help_text="Times the worker running it stopped before finishing (killed, out of memory)."
    )
    transient_retries = models.PositiveIntegerField(
        default=0, help_text="Retries after a transient error (storage briefly unavailable)."
    )
    worker = models.CharField(max_length=200, blank=True, help_text="The worker process running it (host:pid).")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of that worker while it ran this job."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version"], name="one_job_per_image_and_model"),
            models.UniqueConstraint(
                fields=["image"], condition=Q(model_version__isnull=True), name="one_waiting_job_per_image"
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Job {self.pk} image {self.image_id} {self.status}"

    def transition(
        self, status: str, *, error_message: str = "", error_detail: str = "", also_save: tuple[str, ...] = ()
    ) -> None:
        """The only place a job's status changes. Call on a row locked with select_for_update(). `also_save`: other
        fields the caller changed on the row, written in the same UPDATE."""
        from django.utils import timezone

        if status not in self.ALLOWED[self.status]:
            raise ValueError(f"Job {self.pk}: {self.status} -> {status} is not allowed.")
        now = timezone.now()
        self.status = status
        self.error_message = error_message
        self.error_detail = error_detail
        fields = ["status", "error_message", "error_detail", *also_save]
        if status == self.Status.QUEUED:
            self.queued_at, self.started_at, self.finished_at = now, None, None
            fields += ["queued_at", "started_at", "finished_at"]
        elif status == self.Status.RUNNING:
            self.started_at = self.heartbeat_at = now
            self.attempts += 1
            fields += ["started_at", "heartbeat_at", "attempts"]
        elif status in (self.Status.SUCCEEDED, self.Status.FAILED):
            self.finished_at = now
            fields += ["finished_at"]
        self.save(update_fields=fields)

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class Prediction(models.Model):
    """The model's output for one image; at most one per image and model version."""

    job = models.OneToOneField(InferenceJob, on_delete=models.PROTECT, related_name="prediction")
    image = models.ForeignKey("cases.Image", on_delete=models.PROTECT, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    probability = models.FloatField(help_text="Calibrated probability of malignancy.")
    raw_probability = models.FloatField(help_text="The network's own sigmoid output, before calibration.")
    threshold = models.FloatField()
    label = models.CharField(max_length=20)  # 'malignant' | 'benign' at the threshold
    heatmap = models.CharField(max_length=500)  # storage names; served only through access-checked views
    overlay = models.CharField(max_length=500)
    heatmap_peak = models.JSONField(default=dict, help_text="Peak of the heatmap in original pixel coordinates.")
    input_sha256 = models.CharField(max_length=64)
    timings_ms = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version"], name="one_prediction_per_image_and_model"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label} {self.probability:.3f} (image {self.image_id})"

    @property
    def is_malignant(self) -> bool:
        return self.label == "malignant"

    TIMING_LABELS = {
        "queue_wait_ms": "Waiting in the queue",
        "model_load_ms": "Loading the model (first job of a worker)",
        "read_ms": "Reading the working image",
        "decode_ms": "Reading and decoding",  # predictions made before ingestion kept working images
        "preprocess_ms": "Preprocessing",
        "model_and_gradcam_ms": "Model and Grad-CAM",
        "heatmap_files_ms": "Heatmap files",
        "total_ms": "Total in the worker",
    }

    def timings_display(self) -> list[tuple[str, float]]:
        """(label, milliseconds) in processing order, for the result page."""
        return [(label, self.timings_ms[key]) for key, label in self.TIMING_LABELS.items() if key in self.timings_ms]
