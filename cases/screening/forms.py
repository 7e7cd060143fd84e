"""Forms of the clinic pages: what is typed is checked here, field by field, with messages that say what to do;
the rules that are the service's (cases.screening) are checked there too, for the API."""

from __future__ import annotations

from datetime import date, datetime

from django import forms
from django.utils import timezone

from cases.models import Appointment, MammographerRecord, PreviousSurgery, Symptom
from cases.screening.appointments import OUTCOMES
from cases.screening.records import REPEAT_REASONS, ViewTaken, images_taken_problems, view_label


class DateInput(forms.DateInput):
    input_type = "date"


class TimeInput(forms.TimeInput):
    input_type = "time"


class AppointmentForm(forms.Form):
    patient_id = forms.CharField(label="Patient ID (NHS number)", max_length=64)
    family_name = forms.CharField(max_length=100)
    given_name = forms.CharField(max_length=100, required=False)
    birth_date = forms.DateField(label="Date of birth", widget=DateInput)
    day = forms.DateField(label="Date", widget=DateInput)
    time = forms.TimeField(widget=TimeInput)
    site = forms.CharField(max_length=64, help_text="The clinic or mobile unit.")
    station_ae_title = forms.CharField(
        label="Modality (station AE title)",
        max_length=16,
        required=False,
        help_text="The mammography unit she is booked on; empty: any unit of the site.",
    )

    def clean_birth_date(self):
        value = self.cleaned_data["birth_date"]
        if value > date.today():
            raise forms.ValidationError("The date of birth must be in the past.")
        return value

    def clean_station_ae_title(self):
        value = self.cleaned_data["station_ae_title"].strip().upper()
        if "\\" in value:
            raise forms.ValidationError("An AE title has no backslash.")
        return value

    def starts_at(self) -> datetime:
        data = self.cleaned_data
        return timezone.make_aware(datetime.combine(data["day"], data["time"]))


class CheckInForm(forms.Form):
    identity_confirmed = forms.BooleanField(
        label="I have confirmed her identity: name, date of birth and address",
        error_messages={"required": "Confirm her identity (name, date of birth and address) to check her in."},
    )


class OutcomeForm(forms.Form):
    outcome = forms.ChoiceField(choices=[(s.value, s.label) for s in OUTCOMES], widget=forms.RadioSelect)
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Needed for partially screened and attended, not screened.",
    )  # fmt: skip

    def clean(self):
        data = super().clean()
        if data.get("outcome") in Appointment.NEEDS_REASON and not data.get("reason", "").strip():
            self.add_error("reason", "Say why (for example: the woman asked to stop, pain, equipment fault).")
        return data


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Why is the appointment cancelled?", max_length=500,
        error_messages={"required": "Say why the appointment is cancelled."},
    )  # fmt: skip


class HistoryForm(forms.Form):
    implants = forms.ChoiceField(label="Breast implants", choices=MammographerRecord.Implants.choices, required=False,
                                 help_text="Implant-displaced views are then expected of that side.")  # fmt: skip
    previous_mammograms_elsewhere = forms.BooleanField(label="Previous mammograms elsewhere", required=False)
    previous_mammograms_details = forms.CharField(
        label="Where and when", max_length=200, required=False, help_text="For example: Leeds, March 2024."
    )
    special_needs = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For example: wheelchair user, hearing impairment, needs an interpreter.",
    )  # fmt: skip

    def clean(self):
        data = super().clean()
        if data.get("previous_mammograms_elsewhere") and not data.get("previous_mammograms_details", "").strip():
            self.add_error("previous_mammograms_details", "Say where and when her previous mammograms were taken.")
        return data


class SymptomForm(forms.Form):
    kind = forms.ChoiceField(label="Symptom", choices=Symptom.Kind.choices)
    laterality = forms.ChoiceField(label="Breast", choices=[("R", "Right"), ("L", "Left")], widget=forms.RadioSelect)
    area = forms.ChoiceField(label="Where", choices=Symptom.Area.choices, initial=Symptom.Area.CLOCK)
    clock_hour = forms.TypedChoiceField(
        label="Clock position", coerce=int, required=False, empty_value=None,
        choices=[("", "–"), *[(h, f"{h} o'clock") for h in range(1, 13)]],
        help_text="As you face her: 12 up, 3 to your right. Or click the diagram.",
    )  # fmt: skip
    distance_cm = forms.DecimalField(label="Distance from the nipple (cm)", required=False, min_value=0,
                                     max_value=20, decimal_places=1)  # fmt: skip
    onset = forms.ChoiceField(label="For how long", choices=Symptom.Onset.choices, required=False)
    description = forms.CharField(max_length=200, required=False, help_text="Needed for 'Other'.")

    def clean(self):
        data = super().clean()
        if data.get("area") == Symptom.Area.CLOCK and not data.get("clock_hour"):
            self.add_error("clock_hour", "Give the clock position, or choose central, axilla or whole breast.")
        if data.get("kind") == Symptom.Kind.OTHER and not data.get("description", "").strip():
            self.add_error("description", "Describe the symptom.")
        return data


class SurgeryForm(forms.Form):
    kind = forms.ChoiceField(label="Surgery", choices=PreviousSurgery.Kind.choices)
    laterality = forms.ChoiceField(label="Side", choices=[("R", "Right"), ("L", "Left"), ("B", "Both")])
    year = forms.IntegerField(required=False, min_value=1920, max_value=2100)
    details = forms.CharField(max_length=200, required=False, help_text="Needed for 'Other'.")

    def clean_year(self):
        year = self.cleaned_data["year"]
        if year is not None and year > date.today().year:
            raise forms.ValidationError("The year cannot be in the future.")
        return year

    def clean(self):
        data = super().clean()
        if data.get("kind") == PreviousSurgery.Kind.OTHER and not data.get("details", "").strip():
            self.add_error("details", "Describe the surgery.")
        return data


class ImagesTakenForm(forms.Form):
    """One row per expected view (and any view already recorded): images taken, of which repeats, and why."""

    incomplete = forms.BooleanField(label="The exam is incomplete", required=False)
    incomplete_reason = forms.CharField(label="Why it is incomplete", max_length=200, required=False)

    def __init__(self, *args, keys: tuple[str, ...], expected, initial_record=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys, self.expected = keys, expected
        reasons = [("", "–"), *REPEAT_REASONS.items()]
        recorded = (initial_record.images_taken if initial_record else {}) or {}
        self.rows = []
        for key in keys:
            label = view_label(key)
            given = recorded.get(key, {})
            self.fields[f"{key}-taken"] = forms.IntegerField(
                label=f"{label}: images taken", min_value=0, max_value=20, initial=given.get("taken", 1)
            )
            self.fields[f"{key}-repeats"] = forms.IntegerField(
                label=f"{label}: of which repeats", min_value=0, max_value=20, initial=given.get("repeats", 0)
            )
            self.fields[f"{key}-repeat_reason"] = forms.ChoiceField(
                label=f"{label}: reason for the repeat", choices=reasons, required=False,
                initial=given.get("repeat_reason", ""),
            )  # fmt: skip
            self.fields[f"{key}-repeat_detail"] = forms.CharField(
                label=f"{label}: details", max_length=200, required=False, initial=given.get("repeat_detail", "")
            )
            self.rows.append(
                {"label": label, "fields": [self[f"{key}-{name}"] for name in
                                            ("taken", "repeats", "repeat_reason", "repeat_detail")]}
            )  # fmt: skip
        if initial_record is not None:
            self.fields["incomplete"].initial = initial_record.exam_incomplete
            self.fields["incomplete_reason"].initial = initial_record.incomplete_reason

    def views(self) -> list[ViewTaken]:
        data = self.cleaned_data
        return [
            ViewTaken(
                key=key,
                taken=data.get(f"{key}-taken") or 0,
                repeats=data.get(f"{key}-repeats") or 0,
                repeat_reason=data.get(f"{key}-repeat_reason", ""),
                repeat_detail=data.get(f"{key}-repeat_detail", ""),
            )
            for key in self.keys
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        problems = images_taken_problems(
            self.views(), expected=self.expected, incomplete=data.get("incomplete", False),
            incomplete_reason=data.get("incomplete_reason", ""),
        )  # fmt: skip
        for field, message in problems.items():
            self.add_error(field if field in self.fields else None, message)
        return data


class MatchForm(forms.Form):
    appointment = forms.ModelChoiceField(
        queryset=Appointment.objects.none(), widget=forms.RadioSelect, empty_label=None,
        error_messages={"required": "Choose the appointment these images were taken in."},
    )  # fmt: skip

    def __init__(self, *args, candidates: list[Appointment], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["appointment"]
        field.queryset = Appointment.objects.filter(pk__in=[a.pk for a in candidates])
        field.label_from_instance = lambda a: (
            f"{a.accession_number} · {timezone.localtime(a.starts_at):%Y-%m-%d %H:%M} · {a.site} · "
            f"{a.get_status_display()}"
        )


class ReleaseForm(forms.Form):
    reason = forms.CharField(
        label="Why are they read without an appointment?", max_length=500,
        error_messages={"required": "Say why these images are read without an appointment."},
    )  # fmt: skip
