from __future__ import annotations

from django import forms

from audit.actions import ACTIONS
from audit.selectors import AuditFilters


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    user = forms.CharField(required=False, max_length=150, label="User name")
    study = forms.IntegerField(required=False, min_value=1, label="Study id")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    text = forms.CharField(required=False, max_length=200, label="Text in details")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The registry, not the table: every action the trail can hold, without a DISTINCT over every row.
        self.fields["action"].choices = [("", "Any action")] + [(a, a) for a in sorted(ACTIONS)]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The 'from' date is after the 'to' date.")
        return data

    def filters(self) -> AuditFilters:
        """The valid filters (an invalid field is left out, and shown as an error by the page)."""
        data = getattr(self, "cleaned_data", {})
        return AuditFilters(
            action=data.get("action") or "",
            user=(data.get("user") or "").strip(),
            study=data.get("study"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            text=(data.get("text") or "").strip(),
        )
