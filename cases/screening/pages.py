"""The clinic's pages: the day's clinic list, booking, an appointment (check-in, the mammographer's record, the
outcome, its status history), and the held images. Thin: forms in, services and selectors called, templates out.
A form that is refused comes back with its errors (status 400) on the page it was sent from."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability, role_can
from cases.models import Appointment
from cases.screening import appointments as services
from cases.screening import matching, records, selectors
from cases.screening.forms import (
    AppointmentForm,
    CancelForm,
    CheckInForm,
    HistoryForm,
    ImagesTakenForm,
    MatchForm,
    OutcomeForm,
    ReleaseForm,
    SurgeryForm,
    SymptomForm,
)
from cases.screening.presenters import record_panel
from core.errors import ApplicationError

# ------------------------------------------------------------------------------------------------ clinic list


def _day(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else timezone.localdate()
    except ValueError:
        return timezone.localdate()


@capability_required(Capability.APPOINTMENT_VIEW)
def clinic_list(request):
    day = _day(request.GET.get("date"))
    site = request.GET.get("site", "").strip()
    appointments = list(selectors.clinic_list(user=request.user, day=day, site=site))
    counts = {}
    for appointment in appointments:
        counts[appointment.get_status_display()] = counts.get(appointment.get_status_display(), 0) + 1
    context = {
        "day": day,
        "site": site,
        "sites": selectors.clinic_sites(user=request.user, day=day),
        "appointments": appointments,
        "counts": sorted(counts.items()),
        "previous_day": day.fromordinal(day.toordinal() - 1),
        "next_day": day.fromordinal(day.toordinal() + 1),
        "can_schedule": role_can(request.user, Capability.APPOINTMENT_SCHEDULE),
        "can_match": role_can(request.user, Capability.IMAGES_MATCH),
    }
    return render(request, "screening/clinic.html", context)


@capability_required(Capability.APPOINTMENT_SCHEDULE)
@require_http_methods(["GET", "POST"])
def appointment_new(request):
    form = AppointmentForm(request.POST or None, initial={"day": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            appointment = services.appointment_schedule(
                woman=services.WomanDetails(
                    patient_id=data["patient_id"], family_name=data["family_name"], given_name=data["given_name"],
                    birth_date=data["birth_date"],
                ),
                starts_at=form.starts_at(), site=data["site"], station_ae_title=data["station_ae_title"],
                user=request.user,
            )  # fmt: skip
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Booked: accession number {appointment.accession_number}.")
            return redirect("screening:appointment", pk=appointment.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "screening/appointment_new.html", {"form": form}, status=status)


# ------------------------------------------------------------------------------------------------ appointment

# The appointment page holds several forms: each its own prefix, so that no two fields share a name or an id.
PREFIX = {
    "check_in_form": "checkin",
    "outcome_form": "outcome",
    "cancel_form": "cancel",
    "history_form": "history",
    "symptom_form": "symptom",
    "surgery_form": "surgery",
    "images_form": "images",
}


def _forms(appointment: Appointment, request, bound: dict) -> dict:
    """Every form of the appointment page, unbound unless `bound` gives it."""
    record = getattr(appointment, "record", None)
    expected = records.expected_views(record)
    recorded = tuple(k for k in (record.images_taken if record else {}) if k not in expected.keys)
    history_initial = {}
    if record is not None:
        history_initial = {f: getattr(record, f) for f in ("implants", "previous_mammograms_elsewhere",
                                                          "previous_mammograms_details", "special_needs")}  # fmt: skip
    forms = {
        "check_in_form": CheckInForm(prefix=PREFIX["check_in_form"]),
        "outcome_form": OutcomeForm(prefix=PREFIX["outcome_form"]),
        "cancel_form": CancelForm(prefix=PREFIX["cancel_form"]),
        "history_form": HistoryForm(initial=history_initial, prefix=PREFIX["history_form"]),
        "symptom_form": SymptomForm(prefix=PREFIX["symptom_form"]),
        "surgery_form": SurgeryForm(prefix=PREFIX["surgery_form"]),
        "images_form": ImagesTakenForm(
            keys=expected.keys + recorded, expected=expected, initial_record=record, prefix=PREFIX["images_form"]
        ),  # fmt: skip
    }
    forms.update(bound)
    return forms


def _appointment_page(request, pk: int, *, bound: dict | None = None, error: str = "", status: int = 200):
    appointment = selectors.appointment_get(user=request.user, pk=pk)
    can_attend = role_can(request.user, Capability.APPOINTMENT_ATTEND)
    context = {
        "appointment": appointment,
        "patient": appointment.episode.patient,
        "panel": record_panel(appointment),
        "can_attend": can_attend,
        "can_schedule": role_can(request.user, Capability.APPOINTMENT_SCHEDULE),
        "can_view_studies": role_can(request.user, Capability.STUDY_VIEW),
        "recordable": can_attend and appointment.status in records.RECORDABLE,
        "can_check_in": can_attend and Appointment.Status.CHECKED_IN in Appointment.ALLOWED[appointment.status],
        "can_record_outcome": can_attend
        and any(o in Appointment.ALLOWED[appointment.status] for o in services.OUTCOMES),  # fmt: skip
        "can_cancel": Appointment.Status.CANCELLED in Appointment.ALLOWED[appointment.status],
        "error": error,
        **_forms(appointment, request, bound or {}),
    }
    return render(request, "screening/appointment.html", context, status=status)


@capability_required(Capability.APPOINTMENT_VIEW)
def appointment_detail(request, pk: int):
    return _appointment_page(request, pk)


def _done(request, pk: int, message: str, anchor: str = ""):
    messages.success(request, message)
    return redirect(reverse("screening:appointment", args=[pk]) + anchor)


def _refused(request, pk: int, name: str, form, exc: ApplicationError | None = None):
    if exc is not None:
        fields = exc.extra.get("fields", {})
        for field, message in fields.items():
            form.add_error(field if field in form.fields else None, message)
        if not fields:
            form.add_error(None, exc.message)
    return _appointment_page(request, pk, bound={name: form}, error="Please correct the fields marked below.",
                             status=400)  # fmt: skip


@capability_required(Capability.APPOINTMENT_ATTEND)
@require_POST
def appointment_check_in(request, pk: int):
    selectors.appointment_get(user=request.user, pk=pk)
    form = CheckInForm(request.POST, prefix=PREFIX["check_in_form"])
    if not form.is_valid():
        return _refused(request, pk, "check_in_form", form)
    try:
        services.appointment_check_in(appointment_id=pk, user=request.user, identity_confirmed=True)
    except ApplicationError as exc:
        return _refused(request, pk, "check_in_form", form, exc)
    return _done(request, pk, "Checked in; her identity is confirmed.")


@capability_required(Capability.APPOINTMENT_ATTEND)
@require_POST
def appointment_outcome(request, pk: int):
    selectors.appointment_get(user=request.user, pk=pk)
    form = OutcomeForm(request.POST, prefix=PREFIX["outcome_form"])
    if not form.is_valid():
        return _refused(request, pk, "outcome_form", form)
    try:
        appointment = services.appointment_outcome_record(
            appointment_id=pk, user=request.user, outcome=form.cleaned_data["outcome"],
            reason=form.cleaned_data["reason"],
        )  # fmt: skip
    except ApplicationError as exc:
        return _refused(request, pk, "outcome_form", form, exc)
    return _done(request, pk, f"Recorded: {appointment.get_status_display().lower()}.")


@capability_required(Capability.APPOINTMENT_SCHEDULE)
@require_POST
def appointment_cancel(request, pk: int):
    selectors.appointment_get(user=request.user, pk=pk)
    form = CancelForm(request.POST, prefix=PREFIX["cancel_form"])
    if not form.is_valid():
        return _refused(request, pk, "cancel_form", form)
    try:
        services.appointment_cancel(appointment_id=pk, user=request.user, reason=form.cleaned_data["reason"])
    except ApplicationError as exc:
        return _refused(request, pk, "cancel_form", form, exc)
    return _done(request, pk, "The appointment is cancelled.")


# ------------------------------------------------------------------------------------ the mammographer's record


@capability_required(Capability.APPOINTMENT_ATTEND)
@require_POST
def record_history(request, pk: int):
    selectors.appointment_get(user=request.user, pk=pk)
    form = HistoryForm(request.POST, prefix=PREFIX["history_form"])
    if not form.is_valid():
        return _refused(request, pk, "history_form", form)
    try:
        records.record_history_save(appointment_id=pk, user=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        return _refused(request, pk, "history_form", form, exc)
    return _done(request, pk, "Saved.", "#history")


@capability_required(Capability.APPOINTMENT_ATTEND)
@require_POST
def record_symptom_add(request, pk: int):
    selectors.appointment_get(user=request.user, pk=pk)
    form = SymptomForm(request.POST, prefix=PREFIX["symptom_form"])
    if not form.is_valid():
        return _refused(request, pk, "symptom_form", form)
    try:
        records.record_symptom_add(appointment_id=pk, user=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        return _refused(request, pk, "symptom_form", form, exc)
    return _done(request, pk, "Symptom recorded.", "#symptoms")


@capability_required(Capability.APPOINTMENT_ATTEND)
@require_POST
def record_symptom_remove(request, pk: int, item: int):
    selectors.appointment_get(user=request.user, pk=pk)
    try:
        records.record_symptom_remove(appointment_id=pk, user=request.user, symptom_id=item)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("screening:appointment", pk=pk)
    return _done(request, pk, "Symptom removed.", "#symptoms")


@capability_required(Capability.APPOINTMENT_ATTEND)
@require_POST
def record_surgery_add(request, pk: int):
    selectors.appointment_get(user=request.user, pk=pk)
    form = SurgeryForm(request.POST, prefix=PREFIX["surgery_form"])
    if not form.is_valid():
        return _refused(request, pk, "surgery_form", form)
    try:
        records.record_surgery_add(appointment_id=pk, user=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        return _refused(request, pk, "surgery_form", form, exc)
    return _done(request, pk, "Surgery recorded.", "#surgery")


@capability_required(Capability.APPOINTMENT_ATTEND)
@require_POST
def record_surgery_remove(request, pk: int, item: int):
    selectors.appointment_get(user=request.user, pk=pk)
    try:
        records.record_surgery_remove(appointment_id=pk, user=request.user, surgery_id=item)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("screening:appointment", pk=pk)
    return _done(request, pk, "Surgery removed.", "#surgery")


@capability_required(Capability.APPOINTMENT_ATTEND)
@require_POST
def record_images(request, pk: int):
    appointment = selectors.appointment_get(user=request.user, pk=pk)
    unbound = _forms(appointment, request, {})["images_form"]
    form = ImagesTakenForm(request.POST, keys=unbound.keys, expected=unbound.expected, prefix=PREFIX["images_form"])
    if not form.is_valid():
        return _refused(request, pk, "images_form", form)
    try:
        records.record_images_taken(
            appointment_id=pk, user=request.user, views=form.views(), incomplete=form.cleaned_data["incomplete"],
            incomplete_reason=form.cleaned_data["incomplete_reason"],
        )  # fmt: skip
    except ApplicationError as exc:
        return _refused(request, pk, "images_form", form, exc)
    return _done(request, pk, "Images taken recorded.", "#images-taken")


# ------------------------------------------------------------------------------------------------ held images


def _held_page(request, *, bound: dict | None = None, status: int = 200):
    bound = bound or {}
    held = []
    for study in selectors.held_studies(user=request.user):
        candidates = selectors.match_candidates(user=request.user, study=study)
        held.append(
            {
                "study": study,
                "images": list(study.images.all()),
                "candidates": candidates,
                "match_form": bound.get(("match", study.pk)) or MatchForm(candidates=candidates, prefix=f"s{study.pk}"),
                "release_form": bound.get(("release", study.pk)) or ReleaseForm(prefix=f"r{study.pk}"),
            }
        )
    context = {"held": held, "can_schedule": role_can(request.user, Capability.APPOINTMENT_SCHEDULE)}
    return render(request, "screening/held.html", context, status=status)


@capability_required(Capability.IMAGES_MATCH)
def held_list(request):
    return _held_page(request)


@capability_required(Capability.IMAGES_MATCH)
@require_POST
def held_match(request, pk: int):
    study = selectors.held_study_get(user=request.user, pk=pk)
    candidates = selectors.match_candidates(user=request.user, study=study)
    form = MatchForm(request.POST, candidates=candidates, prefix=f"s{study.pk}")
    if form.is_valid():
        try:
            matched = matching.held_study_match(
                study_id=study.pk, appointment_id=form.cleaned_data["appointment"].pk, user=request.user
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request, f"Study {matched.pk} is attached to appointment {matched.accession_number}; it goes on to "
                "analysis and reading.",
            )  # fmt: skip
            return redirect("screening:held")
    return _held_page(request, bound={("match", study.pk): form}, status=400)


@capability_required(Capability.IMAGES_MATCH)
@require_POST
def held_release(request, pk: int):
    study = selectors.held_study_get(user=request.user, pk=pk)
    form = ReleaseForm(request.POST, prefix=f"r{study.pk}")
    if form.is_valid():
        try:
            matching.held_study_release(study_id=study.pk, user=request.user, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Study {study.pk} is released for reading without an appointment.")
            return redirect("screening:held")
    return _held_page(request, bound={("release", study.pk): form}, status=400)
