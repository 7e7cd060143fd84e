"""The clinical domain: patients, studies (exams) and images."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce

# Mammography's reading order (a screening hanging's: RCC, LCC above RMLO, LMLO), then any other view by its name,
# right breast before left. The one ordering of a study's images: the model's default ordering (pages, API lists,
# exports) and image_reading_key (lists sorted in Python) both come from it.
READING_ORDER = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))


def image_reading_rank() -> models.Case:
    """Position of an image in READING_ORDER (a database expression), len(READING_ORDER) for other views."""
    return models.Case(
        *(
            models.When(laterality=side, view=view, then=models.Value(rank))
            for rank, (side, view) in enumerate(READING_ORDER)
        ),
        default=models.Value(len(READING_ORDER)),
        output_field=models.IntegerField(),
    )


def image_reading_key(image) -> tuple:
    """The same order as Image's default ordering, for images already in memory."""
    pair = (image.laterality, image.view)
    rank = READING_ORDER.index(pair) if pair in READING_ORDER else len(READING_ORDER)
    return (rank, image.view, image.laterality != "R", image.pk)


class Patient(models.Model):
    patient_id = models.CharField("Patient ID", max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.patient_id


class Study(models.Model):
    """One screening exam. Holds several images even when their DICOMs carry different StudyInstanceUIDs
    (CBIS-DDSM gives each view its own)."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        PROCESSING = "processing", "AI analysis running"
        AWAITING_READS = "awaiting_reads", "Awaiting reads"
        ARBITRATION = "arbitration", "Arbitration"
        FINAL = "final", "Final"
        # Received images whose accession number matches no appointment, at a site that holds them
        # (SCREENING_HOLD_UNMATCHED): never read, never attached to anyone by name, until a person matches them
        # (cases.screening.matching). ADR 0006.
        HELD = "held", "Held: not matched to an appointment"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    # The screening episode and appointment the images were taken in (linked by accession number, or matched by a
    # person); null for studies that came without one (uploads, research data, sites without appointments).
    episode = models.ForeignKey(
        "cases.ScreeningEpisode", on_delete=models.PROTECT, null=True, blank=True, related_name="studies"
    )
    appointment = models.ForeignKey(
        "cases.Appointment", on_delete=models.PROTECT, null=True, blank=True, related_name="studies"
    )
    held_reason = models.CharField(max_length=200, blank=True, help_text="Why the images are held, while held.")
    accession_number = models.CharField(max_length=64, blank=True, db_index=True)
    study_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    study_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    # The programme's decision once final: recall for further assessment or routine screening.
    final_recall = models.BooleanField(null=True, blank=True)
    finalised_at = models.DateTimeField(null=True, blank=True, db_index=True)  # indexed as Read.submitted_at is
    # The highest AI probability of the study's images (any model), kept by cases.studies.services
    # study_ai_suspicion_refresh whenever a prediction is stored or removed: the worklist sorts by it from an index
    # instead of computing every queued study's maximum at each view.
    ai_suspicion = models.FloatField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Statuses in which a study can be claimed and read (its AI analysis need not have finished).
    READABLE = (Status.PROCESSING, Status.AWAITING_READS)

    # The study's one status flow. Changed only through cases.studies.services.study_transition().
    ALLOWED = {
        Status.UPLOADED: {Status.PROCESSING, Status.AWAITING_READS},
        Status.PROCESSING: {Status.AWAITING_READS, Status.ARBITRATION, Status.FINAL},
        Status.AWAITING_READS: {Status.PROCESSING, Status.ARBITRATION, Status.FINAL},
        Status.ARBITRATION: {Status.FINAL},
        Status.FINAL: set(),
        Status.HELD: {Status.UPLOADED},  # matched or released by a person; the refresh moves it on from there
    }

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        indexes = [
            # The worklist's "most suspicious first" order, studies without an AI result last (cases.reading.worklist
            # SUSPICION_ORDER; COALESCE rather than NULLS LAST, which SQLite indexes do not take).
            models.Index(
                Coalesce(models.F("ai_suspicion"), models.Value(-1.0)).desc(),
                "created_at",
                "id",
                name="study_suspicion_order",
            ),
        ]

    def __str__(self) -> str:
        return f"Study {self.pk} ({self.patient})"


class Image(models.Model):
    class Laterality(models.TextChoices):
        LEFT = "L", "Left"
        RIGHT = "R", "Right"

    class Format(models.TextChoices):
        DICOM = "dicom", "DICOM"
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="images")
    original_filename = models.CharField(max_length=255)
    # Originals are content-addressed: one file per distinct content, named by its SHA-256.
    original = models.CharField(max_length=500)
    sha256 = models.CharField("SHA-256 of the original", max_length=64, unique=True)
    size_bytes = models.BigIntegerField()
    source_format = models.CharField(max_length=10, choices=Format.choices)
    preview = models.CharField(max_length=500)
    # The image as ingestion decoded it, at the model's working resolution (imaging.working_image): the analysis
    # reads this instead of decoding the original again. Empty for images stored before it existed.
    working_image = models.CharField(max_length=500, blank=True)
    working_sha256 = models.CharField(max_length=64, blank=True)
    # The reading viewer's full-resolution pixels (imaging.viewer_pixels), made by ingestion; for images stored
    # before they existed, made the first time someone opens the image (cases.studies.pixels).
    viewer_pixels = models.CharField(max_length=500, blank=True)
    laterality = models.CharField(max_length=1, choices=Laterality.choices)
    view = models.CharField(max_length=16)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    bits_stored = models.PositiveSmallIntegerField()
    photometric_interpretation = models.CharField(max_length=16)
    sop_instance_uid = models.CharField("SOP Instance UID", max_length=64, blank=True, db_index=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    # Indexed: DICOMweb finds and pages DICOM studies by it (cases.dicom.dicomweb.index.dicomweb_study_uids).
    dicom_study_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    manufacturer = models.CharField(max_length=64, blank=True)
    pixel_spacing_mm = models.JSONField(null=True, blank=True)
    window_applied = models.CharField(max_length=64, blank=True)
    dicom_attributes = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = [image_reading_rank().asc(), "view", "-laterality", "pk"]

    def __str__(self) -> str:
        return f"{self.get_laterality_display()} {self.view} ({self.original_filename})"
