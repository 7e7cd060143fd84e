from django import forms

from cases.letters.selectors import SHOW
from cases.models.letters import ScreeningResultKind


class ConfirmResultForm(forms.Form):
    # The result the person saw on the page: refused if the reads decide another one by the time it arrives.
    seen_result = forms.ChoiceField(choices=ScreeningResultKind.choices, widget=forms.HiddenInput)


class LetterFilterForm(forms.Form):
    show = forms.ChoiceField(choices=list(SHOW.items()), required=False, initial="to_print", label="Show")
    result = forms.ChoiceField(
        choices=[("", "Every result"), *ScreeningResultKind.choices], required=False, label="Result"
    )


class LetterTemplateForm(forms.Form):
    subject = forms.CharField(max_length=200, label="Subject", help_text="The letter's heading.")
    body = forms.CharField(
        label="Text",
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90}),
        help_text="Paragraphs separated by a blank line. The density statement is added by the platform when the "
        "readers recorded density; it is not part of this text.",
    )
