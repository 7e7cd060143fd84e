"""Independent double reading: reads (first, second, arbitration), their per-breast assessments, addenda and
outcomes (ground truth recorded later)."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

# Screening categories (cases.reading.rules): 3 and 6 are not screening outcomes; 0, 4 and 5 mean recall.
SCREENING_BIRADS = (0, 1, 2, 4, 5)
RECALL_BIRADS = (0, 4, 5)


class Laterality(models.TextChoices):
    RIGHT = "R", "Right"
    LEFT = "L", "Left"


class Density(models.TextChoices):
    """BI-RADS 5th edition breast composition, the reader's overall assessment of the exam (21 CFR 900.12(c)(1)(vi)
    words each category for the report); c and d are "dense"."""

    A = "a", "a: The breasts are almost entirely fatty"
    B = "b", "b: There are scattered areas of fibroglandular density"
    C = "c", "c: The breasts are heterogeneously dense, which may obscure small masses"
    D = "d", "d: The breasts are extremely dense, which lowers the sensitivity of mammography"


DENSE = (Density.C, Density.D)


class ReadingSession(models.Model):
    """A sitting of reading: the reader starts it, goes from case to case (cases.reading.sessions) and ends it.
    Reads submitted while it is open point to it, so the statistics page can say how many reads a session holds
    and how long sessions last. One open session per reader, enforced by the database."""

    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reading_sessions")
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Empty while the session is open.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reader"], condition=Q(ended_at__isnull=True), name="one_open_reading_session_per_reader"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="reading_session_ends_after_it_starts",
            ),
        ]
        ordering = ["-started_at", "pk"]

    def __str__(self) -> str:
        return f"Reading session {self.pk} of {self.reader}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class Read(models.Model):
    class Kind(models.TextChoices):
        FIRST = "first", "First read"
        SECOND = "second", "Second read"
        ARBITRATION = "arbitration", "Arbitration"

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted"

    class AiReveal(models.TextChoices):
        """How the AI could be seen in a read (settings READERS_SEE_AI and AI_REVEAL when it was claimed)."""

        NONE = "none", "Read without the AI"
        ON_REQUEST = "on_request", "AI off when the read opened, shown on request"
        OPEN = "open", "AI shown when the read opened"
        AFTER_FIRST_IMPRESSION = "after_first_impression", "AI shown only after the reader's first impression"

    # The two independent reads of double reading (arbitration is the third kind).
    DOUBLE = (Kind.FIRST, Kind.SECOND)

    study = models.ForeignKey("cases.Study", on_delete=models.PROTECT, related_name="reads")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reads")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    # What the reader could and did see of the AI. ai_available: the AI could be shown in this read (READERS_SEE_AI
    # when it was claimed; the field once named ai_shown, which meant this). ai_first_shown_at: when the reader first
    # had the AI on screen (the viewer's AI switch or, with AI_REVEAL open, the page opening with it), recorded by the
    # server (cases.reading.services.read_ai_reveal_record); None while it never was. ai_reveal_recorded: False for
    # reads claimed before reveals were recorded, whose reader may or may not have looked (see ai_aided).
    ai_available = models.BooleanField(
        default=True, help_text="Whether the AI result could be shown to the reader (READERS_SEE_AI at claim time)."
    )
    ai_first_shown_at = models.DateTimeField(
        null=True, blank=True, help_text="When the reader first revealed the AI in this read; empty if never."
    )
    ai_reveal_recorded = models.BooleanField(
        default=True, help_text="False for reads from before the platform recorded when the AI was revealed."
    )
    ai_reveal = models.CharField(
        "AI reveal mode", max_length=24, choices=AiReveal.choices, default=AiReveal.ON_REQUEST,
        help_text="How the AI could be seen in this read.",
    )  # fmt: skip
    # With AI_REVEAL after_first_impression: the reader's per-breast BI-RADS and recall before the AI was shown.
    first_impression = models.JSONField(null=True, blank=True)
    first_impression_at = models.DateTimeField(null=True, blank=True)
    comments = models.TextField(blank=True)
    # The reading session the read was submitted in (cases.reading.sessions); empty for reads given outside one.
    session = models.ForeignKey(
        "cases.ReadingSession", on_delete=models.PROTECT, null=True, blank=True, related_name="reads"
    )
    # The unsubmitted form as last saved by its reader's browser (cases.reading.claims.read_draft_save), so that a
    # read in progress survives leaving the page; cleared on submission and when the read is handed over.
    draft = models.JSONField(null=True, blank=True)
    draft_saved_at = models.DateTimeField(null=True, blank=True)
    recall = models.BooleanField(null=True, help_text="Any breast recalled; set on submission.")
    # The reader's breast density for the exam: required in every first, second and arbitration read submitted since
    # it existed (cases.reading.rules); empty on older reads.
    density = models.CharField(max_length=1, choices=Density.choices, blank=True)
    claimed_at = models.DateTimeField(auto_now_add=True)
    # Indexed: the performance page's cache fingerprint reads the latest submission (cases.performance.performance).
    submitted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "kind"], name="one_read_of_each_kind_per_study"),
            # One person never gives both reads of a double reading.
            models.UniqueConstraint(
                fields=["study", "reader"],
                condition=Q(kind__in=["first", "second"]),
                name="two_different_readers",
            ),
        ]
        # A reader's own queues (in progress, completed) and their counts: found through the reader's reads of a
        # status without visiting the others (a reader has tens of thousands of submitted reads on a large site).
        indexes = [models.Index(fields=["reader", "status", "study"], name="read_reader_status_study")]
        ordering = ["study", "claimed_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of study {self.study_id} by {self.reader}"

    @property
    def is_submitted(self) -> bool:
        return self.status == self.Status.SUBMITTED

    @property
    def ai_aided(self) -> bool | None:
        """Whether the reader saw the AI during this read: True, False, or None where it is not known (a read from
        before reveals were recorded that could have shown the AI)."""
        if self.ai_first_shown_at is not None:
            return True
        if not self.ai_available or self.ai_reveal_recorded:
            return False
        return None

    @property
    def ai_locked(self) -> bool:
        """The AI stays hidden until the reader records a first impression (AI_REVEAL after_first_impression)."""
        return self.ai_reveal == self.AiReveal.AFTER_FIRST_IMPRESSION and self.first_impression_at is None


class BreastAssessment(models.Model):
    class Agreement(models.TextChoices):
        AGREE = "agree", "Agree with the AI"
        OVERRIDE = "override", "Override the AI"
        NOT_SHOWN = "not_shown", "AI not shown or not available"
        # The AI was shown, from a model that is not validated: a research score makes no call to agree with.
        NOT_APPLICABLE = "not_applicable", "Not applicable: AI not validated (research score)"

    read = models.ForeignKey(Read, on_delete=models.PROTECT, related_name="assessments")
    laterality = models.CharField(max_length=1, choices=Laterality.choices)
    birads = models.PositiveSmallIntegerField(
        "BI-RADS", validators=[MinValueValidator(0), MaxValueValidator(6)], help_text="Assessment category 0 to 6."
    )
    recall = models.BooleanField()
    ai_agreement = models.CharField(max_length=14, choices=Agreement.choices)
    override_reason = models.TextField(blank=True)
    # Optional mark of the suspicious location, in the original image's pixel coordinates.
    mark_image = models.ForeignKey("cases.Image", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    mark_row = models.FloatField(null=True, blank=True)
    mark_column = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["read", "laterality"], name="one_assessment_per_breast"),
            models.CheckConstraint(condition=Q(birads__gte=0) & Q(birads__lte=6), name="birads_0_to_6"),
            models.CheckConstraint(
                condition=~Q(ai_agreement="override") | ~Q(override_reason=""), name="override_needs_reason"
            ),
            # Added NOT VALID by migration 0009: enforced for every new or changed row; rows submitted before the
            # rules existed stay as their readers gave them (a submitted read is a clinical record).
            models.CheckConstraint(
                condition=Q(recall=True, birads__in=RECALL_BIRADS) | Q(recall=False) & ~Q(birads__in=RECALL_BIRADS),
                name="recall_follows_birads",
            ),
            models.CheckConstraint(condition=Q(birads__in=SCREENING_BIRADS), name="screening_birads"),
        ]
        ordering = ["read", "laterality"]

    def __str__(self) -> str:
        return f"{self.get_laterality_display()}: BI-RADS {self.birads}{', recall' if self.recall else ''}"


class TechnicalRecall(models.Model):
    """A view the reader asks to be taken again (technical recall), with its reason: the woman comes back for those
    views, not for assessment. Apart from recall for assessment, and counted apart."""

    class Reason(models.TextChoices):
        POSITIONING = "positioning", "Positioning: breast tissue not fully shown"
        MOTION = "motion", "Motion blur"
        EXPOSURE = "exposure", "Exposure: under- or overexposed"
        COMPRESSION = "compression", "Inadequate compression"
        ARTEFACT = "artefact", "Artefact"
        OTHER = "other", "Other (described)"

    read = models.ForeignKey(Read, on_delete=models.PROTECT, related_name="technical_recalls")
    laterality = models.CharField(max_length=1, choices=Laterality.choices)
    view = models.CharField(max_length=16)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["read", "laterality", "view"], name="one_technical_recall_per_view"),
            models.CheckConstraint(condition=~Q(reason="other") | ~Q(detail=""), name="other_reason_described"),
        ]
        ordering = ["read", "laterality", "view"]

    def __str__(self) -> str:
        return f"{self.laterality}{self.view}: {self.get_reason_display()}"


class ReadAddendum(models.Model):
    """A correction or addition to a submitted (immutable) read."""

    read = models.ForeignKey(Read, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Addendum to read {self.read_id} by {self.author}"


class Outcome(models.Model):
    """Ground truth for one breast of a study, recorded later by a lead radiologist."""

    class Truth(models.TextChoices):
        MALIGNANT = "malignant", "Biopsy-proven malignant"
        BENIGN = "benign", "Biopsy-proven benign"
        NORMAL = "normal", "Normal at follow-up"

    study = models.ForeignKey("cases.Study", on_delete=models.PROTECT, related_name="outcomes")
    laterality = models.CharField(max_length=1, choices=Laterality.choices)
    truth = models.CharField(max_length=10, choices=Truth.choices)
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now=True, db_index=True)  # indexed as Read.submitted_at is

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "laterality"], name="one_outcome_per_breast")]

    def __str__(self) -> str:
        return f"Study {self.study_id} {self.get_laterality_display()}: {self.get_truth_display()}"

    @property
    def is_cancer(self) -> bool:
        return self.truth == self.Truth.MALIGNANT
