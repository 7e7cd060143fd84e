"""Forms of the reading pages. They parse input only; the rules (override reasons, marks inside the image, two
different readers...) live in cases.reading.services and come back as ApplicationError messages shown on the form."""

from __future__ import annotations

from django import forms

from cases.models import Density, Outcome, TechnicalRecall
from cases.reading import rules
from cases.reading.services import AssessmentInput
from cases.reading.technical_recall import TechnicalRecallInput

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
# What the form offers: the screening categories (3 and 6 are refused with the reason, cases.reading.rules).
SCREENING_CHOICES = [("", "Choose a category…")] + [
    (str(k), f"{k}: {BIRADS_NAMES[k]} ({'recall' if rules.recall_for(k) else 'routine'})")
    for k in rules.SCREENING_BIRADS
]
SIDE_NAMES = {"R": "Right", "L": "Left"}
AI_CALL_WORDS = {
    rules.AI_POSITIVE: "positive (recall)",
    rules.AI_NEGATIVE: "negative (routine)",
    rules.AI_NO_CALL: "no call: research score of a model that is not validated",
    rules.AI_NOT_SHOWN: "not shown",
}

AGREEMENT_WORDS = {
    rules.Agreement.AGREE: "Agree with the AI",
    rules.Agreement.OVERRIDE: "Override the AI: give your reason",
    rules.Agreement.NOT_SHOWN: "AI not shown or not available",
    rules.Agreement.NOT_APPLICABLE: "Not applicable: the AI model is not validated",
}


class BreastAssessmentForm(forms.Form):
    """One breast's assessment. Prefixed with the laterality ("R-birads", "L-birads"...).

    Recall and agreement with the AI are not asked: they follow from BI-RADS and the AI's call (cases.reading.rules),
    shown as the reader chooses (static/reading_form.js) and derived again by the service. The override reason is
    asked where the AI makes a call, required when the decision overrides it."""

    # All categories parse, so that 3 and 6 are refused with the reason rather than "not a valid choice".
    birads = forms.TypedChoiceField(label="BI-RADS", choices=BIRADS_CHOICES, coerce=int)
    override_reason = forms.CharField(
        label="Reason for overriding the AI",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when your decision differs from the AI's call.",
    )
    # The suspicious-location mark, set in the viewer (viewer/marks.js), in original image pixels.
    mark_image = forms.IntegerField(required=False, widget=forms.HiddenInput)
    mark_row = forms.FloatField(required=False, widget=forms.HiddenInput)
    mark_column = forms.FloatField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, laterality: str, ai_call: str = rules.AI_NOT_SHOWN, **kwargs):
        super().__init__(*args, prefix=laterality, **kwargs)
        self.laterality = laterality
        self.side = SIDE_NAMES[laterality]
        self.ai_call = ai_call
        self.ai_call_words = AI_CALL_WORDS[ai_call]
        self.ai_makes_call = ai_call in (rules.AI_POSITIVE, rules.AI_NEGATIVE)
        self.fields["birads"].widget.choices = SCREENING_CHOICES
        self.fields["birads"].widget.attrs.update({"data-birads": laterality})
        if not self.ai_makes_call:
            # No AI call for this breast: nothing to agree with or override.
            del self.fields["override_reason"]

    def derived(self) -> dict:
        """What follows from the BI-RADS chosen so far (bound data, else initial): shown before the script runs,
        and after a refused submission or a restored draft."""
        raw = self.data.get(self.add_prefix("birads")) if self.is_bound else self.initial.get("birads")
        try:
            birads = int(raw)
        except (TypeError, ValueError):
            birads = None
        if birads is None or rules.birads_problem(birads):
            return {"recall": "", "agreement": "", "override": False}
        recall = rules.recall_for(birads)
        agreement = rules.agreement_for(recall=recall, call=self.ai_call)
        return {
            "recall": rules.recall_words(recall),
            "agreement": AGREEMENT_WORDS[agreement],
            "override": agreement == rules.Agreement.OVERRIDE,
        }

    def clean_birads(self):
        birads = self.cleaned_data["birads"]
        problem = rules.birads_problem(birads)
        if problem:
            raise forms.ValidationError(problem)
        return birads

    def to_input(self) -> AssessmentInput:
        data = self.cleaned_data
        has_mark = data.get("mark_image") is not None
        return AssessmentInput(
            laterality=self.laterality,
            birads=data["birads"],
            override_reason=data.get("override_reason") or "",
            mark_image_id=data["mark_image"] if has_mark else None,
            mark_row=data.get("mark_row") if has_mark else None,
            mark_column=data.get("mark_column") if has_mark else None,
        )


def breast_forms(*, breasts: list[str], ai_calls: dict[str, str], data=None) -> list[BreastAssessmentForm]:
    return [
        BreastAssessmentForm(data, laterality=side, ai_call=ai_calls.get(side, rules.AI_NOT_SHOWN)) for side in breasts
    ]


class ExamForm(forms.Form):
    """What a read says of the whole exam: its breast density (required: cases.reading.density), and the views to
    be taken again (technical recall: one checkbox and reason per view of the study, "tr-<side><view>-...")."""

    density = forms.ChoiceField(
        label="Breast density (BI-RADS)",
        choices=Density.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Give the breast density (BI-RADS a, b, c or d): every screening read records it."},
    )

    def __init__(self, *args, views: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.views = views
        for side, view in views:
            key = f"tr-{side}{view}"
            self.fields[f"{key}-repeat"] = forms.BooleanField(
                label=f"Take {SIDE_NAMES[side]} {view} again", required=False
            )
            self.fields[f"{key}-reason"] = forms.ChoiceField(
                label="Reason", required=False, choices=[("", "Choose a reason…"), *TechnicalRecall.Reason.choices]
            )
            self.fields[f"{key}-detail"] = forms.CharField(label="Describe", required=False, max_length=300)

    def technical_recall_rows(self) -> list[dict]:
        """For the template: per view, its three bound fields."""
        rows = []
        for side, view in self.views:
            key = f"tr-{side}{view}"
            rows.append({"side": side, "view": view, "label": f"{SIDE_NAMES[side]} {view}",
                         "repeat": self[f"{key}-repeat"], "reason": self[f"{key}-reason"],
                         "detail": self[f"{key}-detail"]})  # fmt: skip
        return rows

    def technical_recalls(self) -> list[TechnicalRecallInput]:
        data = self.cleaned_data
        return [
            TechnicalRecallInput(
                laterality=side,
                view=view,
                reason=data.get(f"tr-{side}{view}-reason") or "",
                detail=data.get(f"tr-{side}{view}-detail") or "",
            )  # fmt: skip
            for side, view in self.views
            if data.get(f"tr-{side}{view}-repeat")
        ]


def exam_form(study, data=None) -> ExamForm:
    views = sorted({(image.laterality, image.view) for image in study.images.all()}, key=_view_order)
    return ExamForm(data, views=views)


def _view_order(side_view: tuple[str, str]) -> tuple[int, int, str]:
    side, view = side_view
    return ({"CC": 0, "MLO": 1}.get(view, 2), 0 if side == "R" else 1, view)


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
