"""The screening episode as a screening service runs it: a woman's episodes, each with its appointment, whose status
changes are immutable rows; the modality's performed procedure steps (MPPS); what the mammographer records.

Status changes go through cases.screening.appointments.appointment_transition() only, which follows
Appointment.ALLOWED, writes one AppointmentStatusChange row (never updated or deleted: the model refuses, and so do
the database's triggers, migration 0018) and audits it. ADR 0006 says why.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from cases.models.clinical import Patient

SIDES = (("R", "Right"), ("L", "Left"))


class ScreeningEpisode(models.Model):
    """One round of screening for one woman: invited, an appointment (rebooked in the same episode after a
    cancellation or a missed appointment), images, reads, a result."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="episodes")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Episode {self.pk} ({self.patient})"


class Appointment(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CHECKED_IN = "checked_in", "Checked in"
        IN_PROGRESS = "in_progress", "In progress"
        SCREENED = "screened", "Screened"
        PARTIALLY_SCREENED = "partially_screened", "Partially screened"
        ATTENDED_NOT_SCREENED = "attended_not_screened", "Attended, not screened"
        DID_NOT_ATTEND = "did_not_attend", "Did not attend"
        CANCELLED = "cancelled", "Cancelled"

    # The state machine: the only moves appointment_transition() makes. A final status is never left: a woman who
    # comes back is given a new appointment (in the same episode when she was not screened).
    ALLOWED = {
        Status.SCHEDULED: {
            Status.CHECKED_IN,
            Status.IN_PROGRESS,  # the modality started (MPPS) before anyone checked her in
            Status.ATTENDED_NOT_SCREENED,
            Status.DID_NOT_ATTEND,
            Status.CANCELLED,
        },
        Status.CHECKED_IN: {
            Status.IN_PROGRESS,
            Status.SCREENED,  # recorded by the mammographer where the modality sends no MPPS
            Status.PARTIALLY_SCREENED,
            Status.ATTENDED_NOT_SCREENED,
        },
        Status.IN_PROGRESS: {Status.SCREENED, Status.PARTIALLY_SCREENED, Status.ATTENDED_NOT_SCREENED},
        Status.SCREENED: set(),
        Status.PARTIALLY_SCREENED: set(),
        Status.ATTENDED_NOT_SCREENED: set(),
        Status.DID_NOT_ATTEND: set(),
        Status.CANCELLED: set(),
    }
    NEEDS_REASON = (Status.PARTIALLY_SCREENED, Status.ATTENDED_NOT_SCREENED, Status.CANCELLED)
    # On the modality worklist: not started yet.
    ON_WORKLIST = (Status.SCHEDULED, Status.CHECKED_IN)
    # Images may be linked to the appointment (late images after the MPPS completed included).
    TAKES_IMAGES = (
        Status.SCHEDULED,
        Status.CHECKED_IN,
        Status.IN_PROGRESS,
        Status.SCREENED,
        Status.PARTIALLY_SCREENED,
        Status.ATTENDED_NOT_SCREENED,
    )
    ACTIVE = (Status.SCHEDULED, Status.CHECKED_IN, Status.IN_PROGRESS)

    episode = models.ForeignKey(ScreeningEpisode, on_delete=models.PROTECT, related_name="appointments")
    starts_at = models.DateTimeField(db_index=True)
    site = models.CharField(max_length=64, help_text="Where: the clinic or mobile unit.")
    station_ae_title = models.CharField(
        "Scheduled station AE title",
        max_length=16,
        blank=True,
        help_text="The modality the woman is booked on (ScheduledStationAETitle); empty: any of the site's.",
    )
    # Unique per appointment; DICOM's AccessionNumber is SH, at most 16 characters. Arriving images are linked to
    # the appointment by it (cases.studies.placement).
    accession_number = models.CharField(max_length=16, unique=True)
    # The Study Instance UID the modality is asked to use (IHE Scheduled Workflow), served on the worklist.
    study_instance_uid = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.SCHEDULED, db_index=True)
    identity_confirmed_at = models.DateTimeField(null=True, blank=True)
    identity_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "pk"]

    def __str__(self) -> str:
        return f"Appointment {self.accession_number} ({self.episode.patient})"

    @property
    def patient(self) -> Patient:
        return self.episode.patient


class AppointmentStatusChange(models.Model):
    """One change of an appointment's status: from, to, who (a person, or the modality's MPPS), when, why. Written
    once by appointment_transition(), never changed or removed."""

    class Source(models.TextChoices):
        PERSON = "person", "A person"
        MPPS = "mpps", "The modality (MPPS)"
        IMAGES = "images", "Images received"

    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(max_length=24, blank=True, choices=Appointment.Status.choices)
    to_status = models.CharField(max_length=24, choices=Appointment.Status.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.PERSON)
    source_detail = models.CharField(max_length=200, blank=True, help_text="For MPPS: the station and step.")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or 'booked'} -> {self.to_status}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("An appointment's status change is immutable: it is never changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("An appointment's status change is immutable: it is never removed.")


class PerformedProcedureStep(models.Model):
    """A Modality Performed Procedure Step (MPPS) as the modality reported it (N-CREATE, N-SET)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "IN PROGRESS", "In progress"
        COMPLETED = "COMPLETED", "Completed"
        DISCONTINUED = "DISCONTINUED", "Discontinued"

    sop_instance_uid = models.CharField("SOP Instance UID", max_length=64, unique=True)
    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="performed_steps"
    )
    accession_number = models.CharField(max_length=64, blank=True, help_text="As the modality sent it.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    station_ae_title = models.CharField(max_length=16, blank=True)
    peer_address = models.CharField(max_length=64, blank=True)
    referenced_sop_instance_uids = models.JSONField(default=list, blank=True)
    discontinuation_reason = models.CharField(max_length=200, blank=True)
    # COMPLETED, but some referenced images have not arrived yet: the appointment's outcome is decided when they do
    # (cases.screening.mpps.appointment_outcome_settle).
    outcome_pending = models.BooleanField(default=False)
    outcome_note = models.CharField(max_length=200, blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="The last attribute list, as DICOM JSON.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"MPPS {self.sop_instance_uid} ({self.status})"


class MammographerRecord(models.Model):
    """What the mammographer records before and while taking the images; shown to readers before the images."""

    class Implants(models.TextChoices):
        NONE = "", "No implants"
        RIGHT = "R", "Right breast"
        LEFT = "L", "Left breast"
        BOTH = "B", "Both breasts"

    appointment = models.OneToOneField(Appointment, on_delete=models.PROTECT, related_name="record")
    implants = models.CharField(max_length=1, choices=Implants.choices, blank=True)
    previous_mammograms_elsewhere = models.BooleanField(default=False)
    previous_mammograms_details = models.CharField(max_length=200, blank=True, help_text="Where and when.")
    special_needs = models.TextField(blank=True)
    # Per view, keyed 'R-CC', 'L-MLO', 'R-CC-ID'...: {"taken": n, "repeats": n, "repeat_reason": code,
    # "repeat_detail": text}; cases.screening.records says which views and what the codes mean.
    images_taken = models.JSONField(default=dict, blank=True)
    images_recorded_at = models.DateTimeField(null=True, blank=True)
    exam_incomplete = models.BooleanField(default=False)
    incomplete_reason = models.CharField(max_length=200, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(exam_incomplete=False) | ~Q(incomplete_reason=""), name="incomplete_exam_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"Mammographer's record of appointment {self.appointment_id}"


class Symptom(models.Model):
    class Kind(models.TextChoices):
        LUMP = "lump", "Lump"
        SWELLING = "swelling", "Swelling or shape change"
        SKIN_CHANGE = "skin_change", "Skin change"
        NIPPLE_CHANGE = "nipple_change", "Nipple change"
        PAIN = "pain", "Pain"
        OTHER = "other", "Other"

    class Area(models.TextChoices):
        CLOCK = "clock", "At a clock position"
        CENTRAL = "central", "Central, behind the nipple"
        AXILLA = "axilla", "Axilla (armpit)"
        WHOLE = "whole", "Whole breast"

    class Onset(models.TextChoices):
        UNKNOWN = "", "Not asked"
        RECENT = "under_3_months", "Less than 3 months"
        MONTHS = "3_to_12_months", "3 to 12 months"
        YEARS = "over_a_year", "Over a year"
        NOT_SURE = "not_sure", "Not sure"

    record = models.ForeignKey(MammographerRecord, on_delete=models.CASCADE, related_name="symptoms")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    laterality = models.CharField(max_length=1, choices=SIDES)
    area = models.CharField(max_length=8, choices=Area.choices, default=Area.CLOCK)
    # 1 to 12 as the examiner faces the woman (12 up, 3 to the examiner's right), for area 'clock'.
    clock_hour = models.PositiveSmallIntegerField(null=True, blank=True)
    distance_cm = models.DecimalField(
        "Distance from the nipple (cm)", max_digits=3, decimal_places=1, null=True, blank=True
    )
    onset = models.CharField(max_length=16, choices=Onset.choices, blank=True)
    description = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(area="clock") & Q(clock_hour__gte=1) & Q(clock_hour__lte=12))
                | (~Q(area="clock") & Q(clock_hour__isnull=True)),
                name="symptom_clock_hour_with_clock_area",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_laterality_display().lower()})"


class PreviousSurgery(models.Model):
    class Kind(models.TextChoices):
        LUMPECTOMY = "lumpectomy", "Lumpectomy (breast-conserving surgery)"
        MASTECTOMY = "mastectomy", "Mastectomy"
        RECONSTRUCTION = "reconstruction", "Reconstruction"
        REDUCTION = "reduction", "Breast reduction"
        BIOPSY = "biopsy", "Surgical biopsy"
        OTHER = "other", "Other"

    record = models.ForeignKey(MammographerRecord, on_delete=models.CASCADE, related_name="surgeries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    laterality = models.CharField(max_length=1, choices=(*SIDES, ("B", "Both")))
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    details = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "previous surgeries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_laterality_display().lower()})"
