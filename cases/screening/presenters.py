"""What pages and the API show of an appointment and of the mammographer's record: the readers' panel, the breast
diagram's markers (placed by the server: the page needs no script or style to show them), the API's dictionaries."""

from __future__ import annotations

import math
from decimal import Decimal

from django.utils import timezone

from cases.models import Appointment, MammographerRecord, Study, Symptom
from cases.screening.records import REPEAT_REASONS, expected_views, symptom_quadrant, view_label

# The diagram (templates/screening/_breast_diagram.html): the woman seen from the front, as the examiner faces her,
# so her right breast is on the left, as mammograms hang. Clock positions are read the same way.
DIAGRAM_WIDTH, DIAGRAM_HEIGHT, RADIUS = 380, 200, 70
CENTRES = {"R": (100, 110), "L": (280, 110)}
DEFAULT_DEPTH = 0.6  # where a symptom with no distance given is drawn, as a fraction of the radius


def marker_position(symptom: Symptom) -> tuple[float, float]:
    cx, cy = CENTRES[symptom.laterality]
    if symptom.area in (Symptom.Area.CENTRAL, Symptom.Area.WHOLE):
        return cx, cy
    if symptom.area == Symptom.Area.AXILLA:
        hour, depth = (10.5 if symptom.laterality == "R" else 1.5), 1.3  # beyond the upper outer edge
    else:
        hour = symptom.clock_hour or 12
        distance = symptom.distance_cm
        depth = min(max(float(distance) / 10, 0.15), 1.0) if distance is not None else DEFAULT_DEPTH
    angle = math.radians(hour * 30)
    return round(cx + RADIUS * depth * math.sin(angle), 1), round(cy - RADIUS * depth * math.cos(angle), 1)


def symptom_text(symptom: Symptom) -> str:
    """'Lump, right breast, 10 o'clock (upper outer quadrant), 3 cm from the nipple, for less than 3 months: ...'"""
    parts = [symptom.get_kind_display(), f"{symptom.get_laterality_display().lower()} breast"]
    if symptom.area == Symptom.Area.CLOCK:
        parts.append(f"{symptom.clock_hour} o'clock ({symptom_quadrant(symptom)})")
    else:
        parts.append(symptom.get_area_display().lower())
    if symptom.distance_cm is not None and symptom.area == Symptom.Area.CLOCK:
        parts.append(f"{_number(symptom.distance_cm)} cm from the nipple")
    if symptom.onset:
        parts.append(f"for {symptom.get_onset_display().lower()}")
    text = ", ".join(parts)
    return f"{text}: {symptom.description}" if symptom.description else text


def _number(value: Decimal) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def diagram(symptoms: list[Symptom]) -> dict:
    markers = []
    for number, symptom in enumerate(symptoms, start=1):
        x, y = marker_position(symptom)
        markers.append(
            {"number": number, "x": x, "y": y, "label_y": round(y + 4, 1), "whole": symptom.area == Symptom.Area.WHOLE,
             "side": symptom.laterality, "text": symptom_text(symptom)}
        )  # fmt: skip
    return {
        "width": DIAGRAM_WIDTH,
        "height": DIAGRAM_HEIGHT,
        "radius": RADIUS,
        "right": CENTRES["R"],
        "left": CENTRES["L"],
        "markers": markers,
        "ticks": _ticks(),
    }


def _ticks() -> list[dict]:
    """The 12, 3, 6 and 9 o'clock labels around each breast."""
    ticks = []
    for side, (cx, cy) in CENTRES.items():
        for hour in (12, 3, 6, 9):
            angle = math.radians(hour * 30)
            ticks.append(
                {"side": side, "hour": hour, "x": round(cx + (RADIUS + 11) * math.sin(angle), 1),
                 "y": round(cy - (RADIUS + 11) * math.cos(angle) + 4, 1)}
            )  # fmt: skip
    return ticks


def images_taken_rows(record: MammographerRecord | None) -> list[dict]:
    if record is None or not record.images_taken:
        return []
    rows = []
    for key, entry in record.images_taken.items():
        reason = REPEAT_REASONS.get(entry.get("repeat_reason", ""), "")
        detail = entry.get("repeat_detail", "")
        rows.append(
            {"key": key, "label": view_label(key), "taken": entry.get("taken", 0), "repeats": entry.get("repeats", 0),
             "repeat_reason": f"{reason}: {detail}" if reason and detail else reason or detail}
        )  # fmt: skip
    return rows


def record_panel(appointment: Appointment) -> dict:
    """Everything readers are shown of what the mammographer recorded, with the short flags for the heading."""
    record = getattr(appointment, "record", None)
    symptoms = list(record.symptoms.all()) if record else []
    surgeries = list(record.surgeries.all()) if record else []
    expected = expected_views(record)
    flags = []
    if symptoms:
        flags.append(f"{len(symptoms)} symptom{'s' if len(symptoms) != 1 else ''}")
    if record and record.implants:
        flags.append(f"Implants ({record.get_implants_display().lower()})")
    if surgeries:
        flags.append("Previous surgery")
    if record and record.exam_incomplete:
        flags.append("Incomplete exam")
    rows = images_taken_rows(record)
    if any(row["repeats"] for row in rows):
        flags.append("Repeats")
    if record and record.special_needs:
        flags.append("Special needs")
    return {
        "appointment": appointment,
        "record": record,
        "identity_confirmed": appointment.identity_confirmed_at is not None,
        "symptoms": [{"number": n, "text": symptom_text(s), "symptom": s} for n, s in enumerate(symptoms, start=1)],
        "surgeries": surgeries,
        "expected": expected,
        "images_taken": rows,
        "flags": flags,
        "diagram": diagram(symptoms),
    }


def study_record_panel(study: Study) -> dict | None:
    """The panel of the appointment a study's images were taken in; None for a study without one."""
    if study.appointment_id is None:
        return None
    appointment = (
        Appointment.objects.select_related("identity_confirmed_by", "record")
        .prefetch_related("record__symptoms", "record__surgeries")
        .get(pk=study.appointment_id)
    )
    return record_panel(appointment)


def record_as_dict(appointment: Appointment) -> dict:
    """The mammographer's record for the API (the study's and the appointment's)."""
    panel = record_panel(appointment)
    record = panel["record"]
    return {
        "identity_confirmed_at": appointment.identity_confirmed_at,
        "identity_confirmed_by": str(appointment.identity_confirmed_by or "") or None,
        "implants": record.implants if record else "",
        "implant_displaced_views_expected": bool(record and record.implants),
        "previous_mammograms_elsewhere": record.previous_mammograms_elsewhere if record else False,
        "previous_mammograms_details": record.previous_mammograms_details if record else "",
        "special_needs": record.special_needs if record else "",
        "symptoms": [
            {
                "number": item["number"],
                "kind": s.kind,
                "laterality": s.laterality,
                "area": s.area,
                "clock_hour": s.clock_hour,
                "quadrant": symptom_quadrant(s) if s.area == "clock" else "",
                "distance_cm": float(s.distance_cm) if s.distance_cm is not None else None,
                "onset": s.onset,
                "description": s.description,
                "text": item["text"],
            }
            for item in panel["symptoms"]
            for s in [item["symptom"]]
        ],  # fmt: skip
        "previous_surgery": [
            {"kind": s.kind, "laterality": s.laterality, "year": s.year, "details": s.details}
            for s in panel["surgeries"]
        ],
        "expected_views": list(panel["expected"].keys),
        "images_taken": record.images_taken if record else {},
        "exam_incomplete": record.exam_incomplete if record else False,
        "incomplete_reason": record.incomplete_reason if record else "",
        "updated_at": record.updated_at if record else None,
        "flags": panel["flags"],
    }


def appointment_as_dict(appointment: Appointment) -> dict:
    patient = appointment.episode.patient
    return {
        "id": appointment.pk,
        "episode": appointment.episode_id,
        "accession_number": appointment.accession_number,
        "study_instance_uid": appointment.study_instance_uid,
        "starts_at": timezone.localtime(appointment.starts_at),
        "site": appointment.site,
        "station_ae_title": appointment.station_ae_title,
        "status": appointment.status,
        "status_display": appointment.get_status_display(),
        "patient_id": patient.patient_id,
        "patient_name": patient.name,
        "patient_birth_date": patient.birth_date,
        "identity_confirmed": appointment.identity_confirmed_at is not None,
    }
