"""AI results as DICOM objects (SR, Mammography CAD SR, overlay Secondary Capture) and their delivery to the
hospital's archive."""

from django.db import models
from django.db.models import Q


class DicomResultObject(models.Model):
    """One DICOM object made from the platform's AI result, or the record that it could not be made and why.

    Per image (its TID 1500 SR, its overlay): one per image, kind and model version; its SOP Instance UID is derived
    from the source image and the model file, so it is made once however often asked. Per study (the study's TID
    1500 report, the Mammography CAD SR): versions. A version is made once the study is stable, and a later image or
    a re-analysis makes the next one, which references the one it replaces (`predecessor`); the newest is current.
    A failed row keeps its place (and its version) with the reason, until a retry makes it."""

    class Kind(models.TextChoices):
        IMAGE_SR = "image_sr", "Structured Report (image)"
        OVERLAY_SC = "overlay_sc", "Heatmap overlay (Secondary Capture)"
        STUDY_SR = "study_sr", "Structured Report (study)"
        CAD_SR = "cad_sr", "Mammography CAD SR (study)"

    class Status(models.TextChoices):
        BUILT = "built", "Made"
        FAILED = "failed", "Could not be made"

    PER_IMAGE = (Kind.IMAGE_SR, Kind.OVERLAY_SC)
    PER_STUDY = (Kind.STUDY_SR, Kind.CAD_SR)

    study = models.ForeignKey("cases.Study", on_delete=models.PROTECT, related_name="dicom_results")
    image = models.ForeignKey(
        "cases.Image", on_delete=models.PROTECT, null=True, blank=True, related_name="dicom_results"
    )
    model_version = models.ForeignKey(
        "inference.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BUILT, db_index=True)
    version = models.PositiveIntegerField(default=1, help_text="Per-study objects: 1, 2, ... (newest is current).")
    is_current = models.BooleanField(default=True, help_text="False once a newer version replaces it.")
    predecessor = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="The version it replaces."
    )
    content_key = models.CharField(
        max_length=64, blank=True, help_text="Per-study objects: fingerprint of the images and results reported."
    )
    error_message = models.TextField(blank=True, help_text="Why it could not be made, for people.")
    error_detail = models.TextField(blank=True, help_text="For engineers.")
    attempts = models.PositiveIntegerField(default=1)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    sop_instance_uid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    study_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    file = models.CharField(max_length=500, blank=True, help_text="Storage name of the DICOM file.")
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study_id", "kind", "version", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "kind", "model_version"],
                condition=Q(image__isnull=False),
                name="one_result_object_per_image_kind_and_model",
            ),
            models.UniqueConstraint(
                fields=["study", "kind", "version"],
                condition=Q(image__isnull=True),
                name="one_study_result_object_per_kind_and_version",
            ),
            models.CheckConstraint(
                condition=Q(status="failed") | (Q(sop_instance_uid__isnull=False) & ~Q(file="")),
                name="built_result_object_has_its_file",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.sop_instance_uid or self.status}"

    @property
    def is_built(self) -> bool:
        return self.status == self.Status.BUILT


class DicomDelivery(models.Model):
    """Sending one result object to one destination: retried with backoff until delivered or out of attempts."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    result = models.ForeignKey(DicomResultObject, on_delete=models.PROTECT, related_name="deliveries")
    destination = models.CharField(max_length=300, help_text="'C-STORE AET@host:port' or 'STOW-RS url'.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["result_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["result", "destination"], name="one_delivery_per_result_and_destination")
        ]

    def __str__(self) -> str:
        return f"{self.result} -> {self.destination}: {self.status}"
