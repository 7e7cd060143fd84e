"""Model registry (every model the site holds, of each kind, with its lifecycle), inference jobs and predictions."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelKind(models.TextChoices):
    MALIGNANCY = "malignancy", "Malignancy (score per image)"
    DENSITY = "density", "Breast density"


class ModelRuntime(models.TextChoices):
    KERAS = "keras", "Keras (.keras, safe mode)"
    SAVEDMODEL = "savedmodel", "TensorFlow SavedModel (serving signature)"
    ONNX = "onnx", "ONNX (ONNX Runtime, CPU)"
    # The NYU density port: NumPy weights (.npz) loaded into the platform's own Keras network (inference.density).
    WEIGHTS = "weights", "Weights in the platform's own network (.npz)"


class ModelStatus(models.TextChoices):
    """A model's place in its lifecycle (inference.lifecycle has the allowed transitions)."""

    IMPORTED = "imported", "Imported"  # passed the conformance check; runs nowhere
    SHADOW = "shadow", "Shadow"  # runs beside the active model; its output reaches no reader
    ACCEPTED = "accepted", "Accepted"  # accepted at this site (or for research use): may be made active
    ACTIVE = "active", "Active"  # the one model of its kind that analyses new images
    SUSPENDED = "suspended", "Suspended"  # was active, stopped (by a person or a stop rule); a lead may resume it
    RETIRED = "retired", "Retired"  # kept for the record; never runs again


class ModelVersionQuerySet(models.QuerySet):
    def malignancy(self):
        return self.filter(kind=ModelKind.MALIGNANCY)

    def density(self):
        return self.filter(kind=ModelKind.DENSITY)

    def active(self):
        return self.filter(is_active=True)


class ModelVersion(models.Model):
    """One model the site holds (the inventory), of one kind. `status` is its lifecycle, changed only through
    inference.lifecycle.model_version_status_change, which writes a ModelStatusChange row and an audit row;
    `is_active` mirrors status == active (a constraint keeps them equal) so that "the active model" of a kind is
    one indexed look-up: ModelVersion.objects.filter(kind=..., is_active=True)."""

    Kind = ModelKind
    Runtime = ModelRuntime
    Status = ModelStatus

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=ModelKind.choices, default=ModelKind.MALIGNANCY, db_index=True)
    runtime = models.CharField(max_length=20, choices=ModelRuntime.choices, default=ModelRuntime.KERAS)
    status = models.CharField(max_length=20, choices=ModelStatus.choices, default=ModelStatus.IMPORTED, db_index=True)
    # b0 | b2 | b3 | lite0, 'custom' for a small test network, 'imported' for a model brought in by import_model; for a
    # density model its architecture (the card's density.architecture).
    backbone = models.CharField(max_length=20)
    input_size = models.PositiveIntegerField()
    file = models.CharField(max_length=500, help_text="Path of the model file (or SavedModel folder) in MODEL_DIR.")
    file_sha256 = models.CharField(max_length=64, help_text="Of the file as imported (a SavedModel: its zip).")
    preprocessing_version = models.CharField(max_length=20)
    # Operating point on the calibrated probability, chosen on validation data.
    threshold = models.FloatField(default=0.5)
    # Calibration of the model's logit: p = sigmoid(calibration_scale * logit + calibration_bias) (Platt scaling;
    # temperature scaling is calibration_bias = 0). Identity by default.
    calibration_scale = models.FloatField(default=1.0)
    calibration_bias = models.FloatField(default=0.0)
    metrics = models.JSONField(default=dict, blank=True)
    card = models.JSONField(default=dict, blank=True)
    manifest = models.JSONField(
        default=dict, blank=True, help_text="What the importer declared (inference.imports.manifest), as validated."
    )
    conformance = models.JSONField(
        default=dict, blank=True, help_text="The conformance check's report at import (inference.imports.conformance)."
    )
    ms_per_image = models.FloatField(null=True, blank=True, help_text="Measured by the conformance check.")
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    imported_via = models.CharField(
        max_length=100, blank=True, help_text="The page, or the command that imported it (no person: a command)."
    )
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # The monitoring's baseline period (inference.monitoring): the days whose scores and inputs later days are
    # compared with. Empty: the model's first 28 days of predictions. The local acceptance test may set it to its
    # acceptance period.
    baseline_start = models.DateField(null=True, blank=True)
    baseline_end = models.DateField(null=True, blank=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind"], condition=Q(is_active=True), name="one_active_model_per_kind"),
            models.CheckConstraint(
                condition=Q(is_active=True, status="active") | (Q(is_active=False) & ~Q(status="active")),
                name="model_active_flag_matches_status",
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.backbone}, {self.input_size}px)"

    @property
    def validation(self):
        """Its sealed-test figures and whether it is validated: inference.serving.validation for a malignancy
        model, inference.density.validation (its card's own criterion) for a density model."""
        if "_validation" not in self.__dict__:
            if self.kind == ModelKind.DENSITY:
                from inference.density.validation import density_validation

                self.__dict__["_validation"] = density_validation(self.card)
            else:
                from inference.serving.validation import model_validation

                self.__dict__["_validation"] = model_validation(self.card)
        return self.__dict__["_validation"]

    @property
    def gives_heatmap(self) -> bool:
        """Whether its predictions come with a heatmap (recorded by the conformance check; Keras models of the
        platform's own backbones always do)."""
        return bool((self.conformance or {}).get("heatmap", self.runtime == ModelRuntime.KERAS))

    @property
    def version_label(self) -> str:
        return str((self.manifest or {}).get("version") or self.card.get("version") or self.file_sha256[:12])

    @property
    def vendor(self) -> str:
        return str((self.manifest or {}).get("vendor") or self.card.get("vendor") or "")


class ModelStatusChange(models.Model):
    """One change of a model's status: who, when, from, to and why. Written only by
    inference.lifecycle.model_version_status_change, never changed or deleted (the database refuses UPDATE and
    DELETE on this table: migration inference 0007)."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=ModelStatus.choices, blank=True)  # blank: created
    to_status = models.CharField(max_length=20, choices=ModelStatus.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_by_name = models.CharField(max_length=150, help_text="The person's username, or the command.")
    reason = models.TextField()
    # The signed-off local acceptance report a change to "accepted" rests on (None: accepted for research use, or
    # a change to another status).
    acceptance_report = models.ForeignKey(
        "inference.AcceptanceReport", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_version_id", "created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.model_version_id}: {self.from_status or '-'} -> {self.to_status} by {self.changed_by_name}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A status change is a record: it is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("A status change is a record: it is never deleted.")


class ReaderVisibleManager(models.Manager):
    """The default manager of jobs and predictions: shadow rows left out (docs/adr/0009). Every page, API, file
    view, selector, prefetch and receiver that reaches jobs or predictions through `.objects` or a related manager
    (image.jobs, image.predictions) sees only the analyses readers may see; only the worker, the acceptance test and
    the inventory ask for `all_objects`."""

    def get_queryset(self):
        return super().get_queryset().filter(shadow=False)


class AllRowsManager(models.Manager):
    """Every row, shadow ones included: the worker, the acceptance test, the inventory, backups."""


class InferenceJob(models.Model):
    """One analysis of one image; status changes only through InferenceJob.transition(). A shadow job (`shadow`)
    analyses the image with a model in shadow status, beside the active one: left out of `objects`."""

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
    shadow = models.BooleanField(
        default=False, db_index=True, help_text="Run by a model in shadow: its output reaches no reader."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ReaderVisibleManager()
    all_objects = AllRowsManager()

    class Meta:
        base_manager_name = "all_objects"
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
    # Storage names, served only through access-checked views; empty when the model gives no heatmap (a runtime
    # without gradients: ONNX, SavedModel), and then heatmap_peak is empty too.
    heatmap = models.CharField(max_length=500, blank=True)
    overlay = models.CharField(max_length=500, blank=True)
    heatmap_peak = models.JSONField(
        default=dict, blank=True, help_text="Peak of the heatmap in original pixel coordinates; {} without one."
    )
    input_sha256 = models.CharField(max_length=64)
    timings_ms = models.JSONField(default=dict)
    shadow = models.BooleanField(
        default=False,
        db_index=True,
        help_text="Made by a model in shadow: only the acceptance test and the inventory use it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReaderVisibleManager()
    all_objects = AllRowsManager()

    class Meta:
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version"], name="one_prediction_per_image_and_model"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label} {self.probability:.3f} (image {self.image_id})"

    @property
    def is_malignant(self) -> bool:
        return self.label == "malignant"

    @property
    def has_heatmap(self) -> bool:
        return bool(self.heatmap)

    TIMING_LABELS = {
        "queue_wait_ms": "Waiting in the queue",
        "model_load_ms": "Loading the model (first job of a worker)",
        "read_ms": "Reading the working image",
        "decode_ms": "Reading and decoding",  # predictions made before ingestion kept working images
        "preprocess_ms": "Preprocessing",
        "model_and_gradcam_ms": "Model and Grad-CAM",
        "model_ms": "Model (no heatmap)",
        "heatmap_files_ms": "Heatmap files",
        "total_ms": "Total in the worker",
    }

    def timings_display(self) -> list[tuple[str, float]]:
        """(label, milliseconds) in processing order, for the result page."""
        return [(label, self.timings_ms[key]) for key, label in self.TIMING_LABELS.items() if key in self.timings_ms]


class ModelMonitoringDay(models.Model):
    """One day of one model's monitoring (inference.monitoring.compute): its inputs, its outputs against the
    baseline, AI-reader agreement and outcome-based sensitivity. Recomputing a day replaces its row."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="monitoring_days")
    day = models.DateField()
    computed_at = models.DateTimeField()
    in_baseline = models.BooleanField(default=False, help_text="The day lies in the model's baseline period.")
    predictions = models.PositiveIntegerField(default=0, help_text="Images the model scored that day.")
    studies = models.PositiveIntegerField(default=0)
    # Inputs: counts per manufacturer, manufacturer's model name and software version; images per study.
    inputs = models.JSONField(default=dict, blank=True)
    views_per_exam = models.FloatField(null=True, blank=True)
    unseen_equipment = models.JSONField(
        default=list, blank=True, help_text="Manufacturers, models and software versions never seen in the baseline."
    )
    # Outputs: the score histogram (fixed bins), its drift from the baseline, the flag rate at the operating point.
    histogram = models.JSONField(default=list, blank=True)
    score_mean = models.FloatField(null=True, blank=True)
    psi = models.FloatField(null=True, blank=True, help_text="Population stability index against the baseline.")
    ks_statistic = models.FloatField(null=True, blank=True)
    ks_p_value = models.FloatField(null=True, blank=True)
    flagged_studies = models.PositiveIntegerField(default=0)
    flag_rate = models.FloatField(null=True, blank=True, help_text="Studies at or above the operating point.")
    # AI flag against the final read's recall (per breast and per study), for studies final when computed.
    agreement = models.JSONField(default=dict, blank=True)
    # Outcome-based sensitivity: breasts with a malignant outcome, how many the AI flagged.
    outcomes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "day"], name="one_monitoring_row_per_day")]
        ordering = ["model_version_id", "day"]

    def __str__(self) -> str:
        return f"{self.model_version_id} {self.day}"


class StopRule(models.Model):
    """A site's rule that stops a model (inference.monitoring.stop_rules): for one model, or every model of a kind."""

    class Type(models.TextChoices):
        FLAG_RATE = "flag_rate", "Flag rate outside [low, high] for N consecutive days"
        UNSEEN_EQUIPMENT = "unseen_equipment", "A manufacturer, model or software version never seen in the baseline"
        PSI_ABOVE = "psi_above", "Score PSI above a value"
        KS_P_BELOW = "ks_p_below", "Score KS test p-value below a value"

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="stop_rules"
    )
    model_kind = models.CharField(max_length=20, choices=ModelKind.choices, blank=True)
    rule_type = models.CharField(max_length=20, choices=Type.choices)
    low = models.FloatField(null=True, blank=True)
    high = models.FloatField(null=True, blank=True)
    consecutive_days = models.PositiveIntegerField(default=1)
    threshold = models.FloatField(null=True, blank=True, help_text="PSI above it, or KS p-value below it, trips.")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(model_version__isnull=False) & Q(model_kind=""))
                | (Q(model_version__isnull=True) & ~Q(model_kind="")),
                name="stop_rule_for_a_model_or_a_kind",
            ),
        ]
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"Stop rule {self.pk}: {self.describe()}"

    def describe(self) -> str:
        scope = f"model {self.model_version.name}" if self.model_version_id else f"every {self.model_kind} model"
        if self.rule_type == self.Type.FLAG_RATE:
            what = f"flag rate outside [{self.low}, {self.high}] for {self.consecutive_days} consecutive day(s)"
        elif self.rule_type == self.Type.UNSEEN_EQUIPMENT:
            what = "a manufacturer, model or software version not seen in the baseline"
        elif self.rule_type == self.Type.PSI_ABOVE:
            what = f"score PSI above {self.threshold}"
        else:
            what = f"score KS p-value below {self.threshold}"
        return f"{what} ({scope})"


class StopRuleTrip(models.Model):
    """A stop rule tripped for a model on a day: the figures, and whether the model was suspended (an active model
    is; a shadow model reaches no reader and is only reported). Resolved when a lead resumes the model."""

    rule = models.ForeignKey(StopRule, on_delete=models.PROTECT, related_name="trips")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="stop_rule_trips")
    day = models.DateField()
    figures = models.JSONField(default=dict)
    reason = models.TextField()
    suspended = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "model_version", "day"], name="one_trip_per_rule_model_day")
        ]
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Trip of rule {self.rule_id} for {self.model_version_id} on {self.day}"


class AcceptanceProtocol(models.Model):
    """A lead's local acceptance test of one model, written before any result is computed and locked when saved:
    the period of final screens with outcomes, the minimum data, and the criteria (inference.acceptance). Never
    changed or deleted (the database refuses it too: migration inference 0008)."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="acceptance_protocols")
    period_start = models.DateField(help_text="First screen date of the period (inclusive).")
    period_end = models.DateField(help_text="Last screen date of the period (inclusive).")
    min_cancers = models.PositiveIntegerField(help_text="Fewer cancers in the period: the report is insufficient.")
    min_screens = models.PositiveIntegerField(help_text="Fewer screens in the period: the report is insufficient.")
    min_auc_lower = models.FloatField(help_text="The AUC's 95 % CI lower bound must reach this.")
    sensitivity_margin = models.FloatField(
        help_text="Sensitivity at the operating point must reach double reading's sensitivity minus this."
    )
    min_specificity = models.FloatField(help_text="Specificity at the operating point must reach this.")
    max_recall_rate = models.FloatField(help_text="Recall rate at the operating point must not exceed this.")
    n_bootstrap = models.PositiveIntegerField(default=1000)
    notes = models.TextField(blank=True)
    written_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    locked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-locked_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(period_start__lte=models.F("period_end")), name="acceptance_period"),
        ]

    def __str__(self) -> str:
        return f"Acceptance protocol {self.pk} of model {self.model_version_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("An acceptance protocol is locked when saved: it is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("An acceptance protocol is locked when saved: it is never deleted.")

    def criteria(self) -> dict:
        return {
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "min_cancers": self.min_cancers,
            "min_screens": self.min_screens,
            "min_auc_lower": self.min_auc_lower,
            "sensitivity_margin": self.sensitivity_margin,
            "min_specificity": self.min_specificity,
            "max_recall_rate": self.max_recall_rate,
            "n_bootstrap": self.n_bootstrap,
        }


class AcceptanceResult(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    INSUFFICIENT = "insufficient", "Insufficient data"


class AcceptanceReport(models.Model):
    """The figures of one locked protocol, computed from the site's final screens with outcomes in its period
    (inference.acceptance.compute), with pass/fail per criterion and overall. Its figures never change; a lead signs
    off a passing one, which accepts the model (inference.lifecycle)."""

    Result = AcceptanceResult

    protocol = models.ForeignKey(AcceptanceProtocol, on_delete=models.PROTECT, related_name="reports")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="acceptance_reports")
    result = models.CharField(max_length=20, choices=AcceptanceResult.choices)
    figures = models.JSONField(default=dict)
    computed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    computed_at = models.DateTimeField(auto_now_add=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)
    sign_off_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-computed_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(signed_off_at__isnull=True) | Q(result="pass"), name="acceptance_sign_off_only_on_pass"
            ),
        ]

    def __str__(self) -> str:
        return f"Acceptance report {self.pk} ({self.result})"

    @property
    def is_signed_off(self) -> bool:
        return self.signed_off_at is not None
