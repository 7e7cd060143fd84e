"""Forms of the reading pages. They parse input only; the rules (override reasons, marks inside the image, two
different readers...) live in cases.reading.services and come back as ApplicationError messages shown on the form."""

from __future__ import annotations

from django import forms

from cases.models import BreastAssessment, Outcome
from cases.reading.services import AssessmentInput

BIRADS_NAMES = {
    0: "Incomplete: needs additional imaging",
    1: "Negative",
    2: "Benign",
    3: "Probably benign",
    4: "Suspicious",
    5: "Highly suggestive of malignancy",
    6: "Known biopsy-proven malignancy",
}
BIRADS_CHOICES = [("", "Choose a category…")] + [(str(k), f"{k}: {v}") for k, v in BIRADS_NAMES.items()]
SIDE_NAMES = {"R": "Right", "L": "Left"}


class BreastAssessmentForm(forms.Form):
    """One breast's assessment. Prefixed with the laterality ("R-birads", "L-birads"...)."""

    birads = forms.TypedChoiceField(label="BI-RADS", choices=BIRADS_CHOICES, coerce=int)
    recall = forms.TypedChoiceField(
        label="Recall for assessment",
        choices=[("yes", "Yes, recall"), ("no", "No, routine screening")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    ai_agreement = forms.ChoiceField(
        label="AI result",
        choices=[
            (BreastAssessment.Agreement.AGREE, "Agree with the AI"),
            (BreastAssessment.Agreement.OVERRIDE, "Override the AI"),
        ],
        widget=forms.RadioSelect,
    )
    override_reason = forms.CharField(
        label="Reason for overriding the AI",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when you override the AI.",
    )
    # The suspicious-location mark, set in the viewer (viewer/marks.js), in original image pixels.
    mark_image = forms.IntegerField(required=False, widget=forms.HiddenInput)
    mark_row = forms.FloatField(required=False, widget=forms.HiddenInput)
    mark_column = forms.FloatField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, laterality: str, ai_available: bool, **kwargs):
        super().__init__(*args, prefix=laterality, **kwargs)
        self.laterality = laterality
        self.side = SIDE_NAMES[laterality]
        self.ai_available = ai_available
        if not ai_available:
            # AI not shown or not available for this breast: nothing to agree with.
            del self.fields["ai_agreement"]
            del self.fields["override_reason"]

    def to_input(self) -> AssessmentInput:
        data = self.cleaned_data
        has_mark = data.get("mark_image") is not None
        return AssessmentInput(
            laterality=self.laterality,
            birads=data["birads"],
            recall=data["recall"],
            ai_agreement=data.get("ai_agreement") or BreastAssessment.Agreement.NOT_SHOWN,
            override_reason=data.get("override_reason") or "",
            mark_image_id=data["mark_image"] if has_mark else None,
            mark_row=data.get("mark_row") if has_mark else None,
            mark_column=data.get("mark_column") if has_mark else None,
        )


def breast_forms(*, breasts: list[str], ai_breasts: set[str], data=None) -> list[BreastAssessmentForm]:
    return [BreastAssessmentForm(data, laterality=side, ai_available=side in ai_breasts) for side in breasts]


class CommentsForm(forms.Form):
    comments = forms.CharField(label="Comments", required=False, widget=forms.Textarea(attrs={"rows": 3}))


class AddendumForm(forms.Form):
    text = forms.CharField(label="Addendum", widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)


class AssignForm(forms.Form):
    reader = forms.ModelChoiceField(label="Assign to", queryset=None, empty_label="Choose a radiologist…")
    read = forms.TypedChoiceField(label="Read", coerce=int, required=False, empty_value=None)

    def __init__(self, *args, readers, slots: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reader"].queryset = readers
        self.fields["reader"].label_from_instance = lambda user: (
            f"{user.get_full_name() or user.username} ({user.get_role_display()})"
        )
        choices = [("", "The next free read")]
        choices += [
            (str(slot["id"]), f"Reassign the {slot['kind_display'].lower()} (held by {slot['reader']}, unfinished)")
            for slot in slots
            if slot["status"] == "in_progress"
        ]
        self.fields["read"].choices = choices


class OutcomeForm(forms.Form):
    laterality = forms.ChoiceField(label="Breast")
    # No preselected outcome: ground truth is chosen deliberately.
    truth = forms.ChoiceField(label="Outcome", choices=[("", "Choose an outcome…"), *Outcome.Truth.choices])
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, breasts: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["laterality"].choices = [("", "Choose a breast…")] + [(side, SIDE_NAMES[side]) for side in breasts]
