"""The end of a screening episode: its result, confirmed by a person, and the woman's result letter.

A ScreeningResultConfirmation is written once per final study, by a person who saw the result the reads decided
(routine recall, technical recall, recall for assessment); it keeps what the letter says (views to take again, the
final reader density and its statement) as they were when confirmed. A Letter is one PDF made from it with the site's
current LetterTemplate for that result; making it again (after the site corrected its wording) adds a new Letter and
keeps the old one. Templates are versioned: editing one adds a version, so every letter names the exact wording it
was made from. cases/letters/ holds the services and pages; docs/screening-episodes.md tells the story.
"""

from django.conf import settings
from django.db import models

from cases.models.clinical import Study
from cases.models.screening import ScreeningEpisode


class ScreeningResultKind(models.TextChoices):
    ROUTINE = "routine_recall", "Routine recall"
    TECHNICAL = "technical_recall", "Technical recall"
    ASSESSMENT = "recall_for_assessment", "Recall for assessment"


class ScreeningResultConfirmation(models.Model):
    study = models.OneToOneField(Study, on_delete=models.PROTECT, related_name="result_confirmation")
    episode = models.ForeignKey(
        ScreeningEpisode, null=True, blank=True, on_delete=models.PROTECT, related_name="result_confirmations"
    )
    result = models.CharField(max_length=24, choices=ScreeningResultKind.choices)
    # What the letter says, as it stood when confirmed: [{"laterality", "view", "reason", "detail"}]
    views_to_repeat = models.JSONField(default=list, blank=True)
    density_category = models.CharField(max_length=1, blank=True)
    density_statement = models.TextField(blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-confirmed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_result_display()} (study {self.study_id})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("A confirmed screening result is never changed once written.")
        super().save(*args, **kwargs)


class LetterTemplate(models.Model):
    """One version of the site's wording for one result. The current one is the highest version."""

    result = models.CharField(max_length=24, choices=ScreeningResultKind.choices)
    version = models.PositiveIntegerField()
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Paragraphs separated by a blank line; placeholders in {{ double braces }}.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # null: the platform's first wording
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["result", "-version"]
        constraints = [models.UniqueConstraint(fields=["result", "version"], name="letter_template_one_version")]

    def __str__(self) -> str:
        return f"{self.get_result_display()} v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("A letter template version is never changed: save a new version.")
        super().save(*args, **kwargs)


class Letter(models.Model):
    confirmation = models.ForeignKey(ScreeningResultConfirmation, on_delete=models.PROTECT, related_name="letters")
    template = models.ForeignKey(LetterTemplate, on_delete=models.PROTECT, related_name="letters")
    recipient = models.CharField(max_length=200)
    subject = models.CharField(max_length=200)
    text = models.TextField(help_text="The letter's text as made (what the PDF says).")
    pdf_name = models.CharField(max_length=200, help_text="The PDF's name in the media store (content hash).")
    pdf_sha256 = models.CharField(max_length=64)
    made_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    made_at = models.DateTimeField(auto_now_add=True)
    printed_at = models.DateTimeField(null=True, blank=True)
    printed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-made_at", "-pk"]
        indexes = [models.Index(fields=["printed_at"], name="letter_printed_at")]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return f"L-{self.pk:06d}"
