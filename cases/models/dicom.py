"""AI results as DICOM objects (SR and overlay Secondary Capture) and their delivery to the hospital's archive."""

from django.db import models


class DicomResultObject(models.Model):
    """One DICOM object made from the platform's AI result. The file is content-addressed in the store; its SOP
    Instance UID is derived from the source image and the model file, so it is made once however often asked."""

    class Kind(models.TextChoices):
        IMAGE_SR = "image_sr", "Structured Report (image)"
        STUDY_SR = "study_sr", "Structured Report (study)"
        OVERLAY_SC = "overlay_sc", "Heatmap overlay (Secondary Capture)"

    study = models.ForeignKey("cases.Study", on_delete=models.PROTECT, related_name="dicom_results")
    image = models.ForeignKey(
        "cases.Image", on_delete=models.PROTECT, null=True, blank=True, related_name="dicom_results"
    )
    model_version = models.ForeignKey("inference.ModelVersion", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    sop_class_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    series_instance_uid = models.CharField(max_length=64)
    study_instance_uid = models.CharField(max_length=64, db_index=True)
    file = models.CharField(max_length=500, help_text="Storage name of the DICOM file.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study_id", "kind", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.sop_instance_uid}"


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
