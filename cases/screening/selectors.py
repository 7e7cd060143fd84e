"""Reads of appointments, episodes and held images. Each takes the requesting user and checks their role."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.roles import Capability, role_can
from cases.models import Appointment, AppointmentStatusChange, PerformedProcedureStep, Study


def _require(user, capability: Capability) -> None:
    if not role_can(user, capability):
        raise PermissionDenied(f"Your role does not allow this ({capability}).")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The site's calendar day as an aware [start, end) interval."""
    zone = timezone.get_current_timezone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def clinic_list(*, user, day: date, site: str = "") -> QuerySet[Appointment]:
    """The day's appointments (at one site, or all), in time order, with the woman and her studies' image count."""
    _require(user, Capability.APPOINTMENT_VIEW)
    start, end = day_bounds(day)
    appointments = (
        Appointment.objects.filter(starts_at__gte=start, starts_at__lt=end)
        .select_related("episode__patient", "identity_confirmed_by")
        .annotate(image_count=Count("studies__images", distinct=True))
        .order_by("starts_at", "pk")
    )
    return appointments.filter(site=site) if site else appointments


def clinic_sites(*, user, day: date) -> list[str]:
    _require(user, Capability.APPOINTMENT_VIEW)
    start, end = day_bounds(day)
    found = Appointment.objects.filter(starts_at__gte=start, starts_at__lt=end).values_list("site", flat=True)
    return sorted(set(found))


def appointment_get(*, user, pk: int) -> Appointment:
    _require(user, Capability.APPOINTMENT_VIEW)
    appointment = (
        Appointment.objects.select_related("episode__patient", "identity_confirmed_by", "created_by")
        .prefetch_related(
            Prefetch("status_changes", queryset=AppointmentStatusChange.objects.select_related("changed_by")),
            Prefetch("performed_steps", queryset=PerformedProcedureStep.objects.order_by("created_at")),
            Prefetch("studies", queryset=Study.objects.annotate(image_count=Count("images")).order_by("created_at")),
        )
        .filter(pk=pk)
        .first()
    )
    if appointment is None:
        raise Http404("No such appointment.")
    return appointment


def held_studies(*, user) -> QuerySet[Study]:
    """Studies held because their images matched no appointment, oldest first, with their images."""
    _require(user, Capability.IMAGES_MATCH)
    return (
        Study.objects.filter(status=Study.Status.HELD)
        .select_related("patient")
        .prefetch_related("images")
        .order_by("created_at", "pk")
    )


def held_study_get(*, user, pk: int) -> Study:
    _require(user, Capability.IMAGES_MATCH)
    study = Study.objects.select_related("patient").filter(pk=pk, status=Study.Status.HELD).first()
    if study is None:
        raise Http404("No such held study (it may have been matched already).")
    return study


def match_candidates(*, user, study: Study) -> list[Appointment]:
    """The appointments a held study may be attached to: the same woman's (same patient ID), that take images,
    most recent first. Never anyone else's, whatever the name says."""
    _require(user, Capability.IMAGES_MATCH)
    return list(
        Appointment.objects.filter(episode__patient=study.patient, status__in=Appointment.TAKES_IMAGES)
        .select_related("episode__patient")
        .order_by("-starts_at")[:10]
    )
