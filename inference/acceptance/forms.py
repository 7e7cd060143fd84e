"""The acceptance protocol form (a lead writes it; it is locked when saved) and the sign-off form."""

from __future__ import annotations

from django import forms


class AcceptanceProtocolForm(forms.Form):
    period_start = forms.DateField(label="Period: first screen date", widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(label="Period: last screen date", widget=forms.DateInput(attrs={"type": "date"}))
    min_cancers = forms.IntegerField(label="Minimum cancers", min_value=1, initial=20)
    min_screens = forms.IntegerField(label="Minimum screens", min_value=1, initial=1000)
    min_auc_lower = forms.FloatField(label="AUC 95 % CI lower bound at least", min_value=0, max_value=1, initial=0.8)
    sensitivity_margin = forms.FloatField(
        label="Sensitivity at least double reading's minus", min_value=0, max_value=1, initial=0.05
    )
    min_specificity = forms.FloatField(label="Specificity at least", min_value=0, max_value=1, initial=0.85)
    max_recall_rate = forms.FloatField(label="Recall rate at most", min_value=0, max_value=1, initial=0.1)
    n_bootstrap = forms.IntegerField(label="Bootstrap resamples", min_value=100, max_value=10000, initial=1000)
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if data.get("period_start") and data.get("period_end") and data["period_start"] > data["period_end"]:
            raise forms.ValidationError("The period ends before it starts.")
        return data


class SignOffForm(forms.Form):
    note = forms.CharField(label="Note (optional)", required=False, widget=forms.Textarea(attrs={"rows": 2}))
