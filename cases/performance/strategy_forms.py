"""The lead's request for a strategies report: parses input only (StrategyParameters checks the values)."""

from __future__ import annotations

from django import forms

from cases.performance.strategy_cutoffs import DEFAULT_EXTRA_RECALL_BUDGET_PER_1000
from cases.performance.strategy_report import StrategyParameters
from inference.models import ModelVersion


class StrategyRequestForm(forms.Form):
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.malignancy().order_by("-created_at"),
        to_field_name="name",
        required=False,
        empty_label="The active model",
        help_text="Whose AI scores the AI strategies replay.",
    )
    split_date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Screens before it choose the cut-offs, screens from it report them. Empty: the median date.",
    )
    extra_recall_budget_per_1000 = forms.FloatField(
        label="Safety-net recall budget",
        min_value=0,
        max_value=1000,
        required=False,
        initial=DEFAULT_EXTRA_RECALL_BUDGET_PER_1000,
        help_text="Extra recalls per 1,000 screens the safety net may add in the earlier period.",
    )

    def parameters(self) -> StrategyParameters:
        budget = self.cleaned_data.get("extra_recall_budget_per_1000")
        return StrategyParameters(
            split_date=self.cleaned_data.get("split_date"),
            extra_recall_budget_per_1000=DEFAULT_EXTRA_RECALL_BUDGET_PER_1000 if budget is None else budget,
        )
