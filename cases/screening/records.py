"""What the mammographer records: the services that write it (each audited), and what follows from it (the views
expected of the exam, a symptom's quadrant).

The record is written while the woman is checked in or being imaged, and may be completed after, until a reader
has started reading her images: readers must never see it change under them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from cases.models import Appointment, MammographerRecord, PreviousSurgery, Read, Symptom
from core.errors import ApplicationError

STANDARD_VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))
REPEAT_REASONS = {
    "positioning": "Positioning",
    "movement": "Movement or blur",
    "exposure": "Exposure",
    "artefact": "Artefact",
    "equipment": "Equipment fault",
    "other": "Other",
}
RECORDABLE = (
    Appointment.Status.CHECKED_IN,
    Appointment.Status.IN_PROGRESS,
    Appointment.Status.SCREENED,
    Appointment.Status.PARTIALLY_SCREENED,
    Appointment.Status.ATTENDED_NOT_SCREENED,
)


def view_key(side: str, view: str, *, implant_displaced: bool = False) -> str:
    return f"{side}-{view}" + ("-ID" if implant_displaced else "")


def view_label(key: str) -> str:
    """'R-CC' -> 'RCC', 'L-MLO-ID' -> 'LMLO implant displaced'."""
    side, view, *rest = key.split("-")
    return f"{side}{view}" + (" implant displaced" if rest else "")


@dataclass(frozen=True)
class ExpectedViews:
    """The views an exam is expected to have, from what the mammographer recorded."""

    pairs: frozenset[tuple[str, str]]  # (side, view) that must be imaged
    keys: tuple[str, ...]  # every view the images-taken form asks about, implant-displaced ones included
    image_count: int
    note: str = ""


def expected_views(record: MammographerRecord | None) -> ExpectedViews:
    """Four views (RCC, LCC, RMLO, LMLO); none of a breast removed by mastectomy; and with implants, an
    implant-displaced CC and MLO of each breast with an implant besides the standard ones (Eklund views)."""
    sides = {"R", "L"}
    notes = []
    implants: set[str] = set()
    if record is not None:
        for surgery in record.surgeries.all():
            if surgery.kind == PreviousSurgery.Kind.MASTECTOMY:
                removed = {"R", "L"} if surgery.laterality == "B" else {surgery.laterality}
                sides -= removed
                notes.append(f"mastectomy ({surgery.get_laterality_display().lower()}): no views of that side")
        implants = ({"R", "L"} if record.implants == "B" else {record.implants}) & sides if record.implants else set()
        if implants:
            notes.append("implants: implant-displaced views expected")
    pairs = frozenset((side, view) for side, view in STANDARD_VIEWS if side in sides)
    keys = [view_key(side, view) for side, view in STANDARD_VIEWS if side in sides]
    keys += [view_key(side, view, implant_displaced=True) for side, view in STANDARD_VIEWS if side in implants]
    return ExpectedViews(pairs=pairs, keys=tuple(keys), image_count=len(keys), note="; ".join(notes))


def symptom_quadrant(symptom: Symptom) -> str:
    """The quadrant of a clock position, as the examiner faces the woman (12 up, 3 to the examiner's right): for
    her right breast 9 o'clock is outer (lateral), for her left breast 3 o'clock is."""
    if symptom.area != Symptom.Area.CLOCK or not symptom.clock_hour:
        return symptom.get_area_display()
    hour = symptom.clock_hour % 12
    outer_right = symptom.laterality == "R"
    side = {True: "outer", False: "inner"}
    if hour in (0, 6):
        return "upper, on the midline" if hour == 0 else "lower, on the midline"
    if hour == 3:
        return f"{side[not outer_right]}, on the horizontal"
    if hour == 9:
        return f"{side[outer_right]}, on the horizontal"
    vertical = "upper" if hour in (10, 11, 1, 2) else "lower"
    lateral = side[outer_right] if hour in (7, 8, 10, 11) else side[not outer_right]
    return f"{vertical} {lateral} quadrant"


# --- Writing ------------------------------------------------------------------------------------------------------


def _editable_record(appointment_id: int, user) -> tuple[Appointment, MammographerRecord]:
    """The appointment (locked) and its record, made when first written; refused when it may not change."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment_id)
    if appointment.status not in RECORDABLE:
        raise ApplicationError(
            f"The appointment is {appointment.get_status_display().lower()}: check the woman in before recording."
        )
    if Read.objects.filter(study__appointment=appointment).exists():
        raise ApplicationError(
            "Reading of her images has started: what the mammographer recorded can no longer change."
        )
    record, _ = MammographerRecord.objects.get_or_create(appointment=appointment, defaults={"updated_by": user})
    return appointment, record


def _audit(user, appointment: Appointment, what: str, details: dict) -> None:
    audit_record(
        action="appointment.record_changed",
        actor=user,
        obj=appointment,
        details={"what": what, "accession_number": appointment.accession_number, **details},
    )


@transaction.atomic
def record_history_save(
    *,
    appointment_id: int,
    user,
    implants: str,
    previous_mammograms_elsewhere: bool,
    previous_mammograms_details: str,
    special_needs: str,
) -> MammographerRecord:
    appointment, record = _editable_record(appointment_id, user)
    if implants not in MammographerRecord.Implants.values:
        raise ApplicationError("Choose where the implants are, or no implants.")
    if previous_mammograms_elsewhere and not previous_mammograms_details.strip():
        raise ApplicationError("Say where and when her previous mammograms were taken.")
    fields = ("implants", "previous_mammograms_elsewhere", "previous_mammograms_details", "special_needs")
    before = {f: getattr(record, f) for f in fields}
    record.implants = implants
    record.previous_mammograms_elsewhere = previous_mammograms_elsewhere
    record.previous_mammograms_details = previous_mammograms_details.strip() if previous_mammograms_elsewhere else ""
    record.special_needs = special_needs.strip()
    record.updated_by = user
    record.save()
    after = {f: getattr(record, f) for f in before}
    changed = {f: [before[f], after[f]] for f in fields if before[f] != after[f]}
    _audit(user, appointment, "history", {"changed": changed})
    return record


@transaction.atomic
def record_symptom_add(
    *,
    appointment_id: int,
    user,
    kind: str,
    laterality: str,
    area: str,
    clock_hour: int | None,
    distance_cm,
    onset: str,
    description: str,
) -> Symptom:
    appointment, record = _editable_record(appointment_id, user)
    if area == Symptom.Area.CLOCK and not (clock_hour and 1 <= clock_hour <= 12):
        raise ApplicationError("Give the clock position (1 to 12), or choose central, axilla or whole breast.")
    if kind == Symptom.Kind.OTHER and not description.strip():
        raise ApplicationError("Describe the symptom.")
    symptom = Symptom.objects.create(
        record=record,
        kind=kind,
        laterality=laterality,
        area=area,
        clock_hour=clock_hour if area == Symptom.Area.CLOCK else None,
        distance_cm=distance_cm,
        onset=onset,
        description=description.strip(),
        recorded_by=user,
    )
    _audit(user, appointment, "symptom_added", {"symptom": symptom.pk, "kind": kind, "laterality": laterality,
                                                "area": area, "clock_hour": symptom.clock_hour})  # fmt: skip
    return symptom


@transaction.atomic
def record_symptom_remove(*, appointment_id: int, user, symptom_id: int) -> None:
    appointment, record = _editable_record(appointment_id, user)
    symptom = record.symptoms.filter(pk=symptom_id).first()
    if symptom is None:
        raise ApplicationError("No such symptom on this appointment.")
    _audit(user, appointment, "symptom_removed", {"symptom": symptom.pk, "kind": symptom.kind,
                                                  "laterality": symptom.laterality})  # fmt: skip
    symptom.delete()


@transaction.atomic
def record_surgery_add(
    *, appointment_id: int, user, kind: str, laterality: str, year: int | None, details: str
) -> PreviousSurgery:
    appointment, record = _editable_record(appointment_id, user)
    if kind == PreviousSurgery.Kind.OTHER and not details.strip():
        raise ApplicationError("Describe the surgery.")
    surgery = PreviousSurgery.objects.create(
        record=record, kind=kind, laterality=laterality, year=year, details=details.strip(), recorded_by=user
    )
    _audit(user, appointment, "surgery_added", {"surgery": surgery.pk, "kind": kind, "laterality": laterality})
    return surgery


@transaction.atomic
def record_surgery_remove(*, appointment_id: int, user, surgery_id: int) -> None:
    appointment, record = _editable_record(appointment_id, user)
    surgery = record.surgeries.filter(pk=surgery_id).first()
    if surgery is None:
        raise ApplicationError("No such surgery on this appointment.")
    _audit(user, appointment, "surgery_removed", {"surgery": surgery.pk, "kind": surgery.kind})
    surgery.delete()


@dataclass(frozen=True)
class ViewTaken:
    key: str
    taken: int
    repeats: int = 0
    repeat_reason: str = ""
    repeat_detail: str = ""


@transaction.atomic
def record_images_taken(
    *, appointment_id: int, user, views: list[ViewTaken], incomplete: bool, incomplete_reason: str
) -> MammographerRecord:
    """The images taken per view, repeats with their reasons, and an incomplete exam with its reason. The rules
    (the form shows them as errors beside each field): repeats are among the images taken, so fewer than them; a
    repeat has a reason ('other' described); an expected view without an image makes the exam incomplete, which
    needs its reason."""
    appointment, record = _editable_record(appointment_id, user)
    expected = expected_views(record)
    problems = images_taken_problems(views, expected=expected, incomplete=incomplete,
                                     incomplete_reason=incomplete_reason)  # fmt: skip
    if problems:
        raise ApplicationError(" ".join(problems.values()), extra={"fields": problems})
    record.images_taken = {
        v.key: {"taken": v.taken, "repeats": v.repeats, "repeat_reason": v.repeat_reason if v.repeats else "",
                "repeat_detail": v.repeat_detail.strip() if v.repeats else ""}
        for v in views
    }  # fmt: skip
    record.exam_incomplete = incomplete
    record.incomplete_reason = incomplete_reason.strip() if incomplete else ""
    record.updated_by = user
    record.images_recorded_at = timezone.now()
    record.save()
    _audit(user, appointment, "images_taken", {"images_taken": record.images_taken, "incomplete": incomplete,
                                               "incomplete_reason": record.incomplete_reason})  # fmt: skip
    return record


def images_taken_problems(
    views: list[ViewTaken], *, expected: ExpectedViews, incomplete: bool, incomplete_reason: str
) -> dict[str, str]:
    """Field name -> what is wrong ('R-CC-repeats', 'incomplete_reason'...); empty when the entry is right."""
    problems: dict[str, str] = {}
    by_key = {v.key: v for v in views}
    for key in expected.keys:
        if key not in by_key:
            problems[f"{key}-taken"] = f"Say how many {view_label(key)} images were taken."
    for v in views:
        if v.taken < 0 or v.repeats < 0:
            problems[f"{v.key}-taken"] = f"{view_label(v.key)}: numbers cannot be negative."
        elif v.repeats and v.repeats >= v.taken:
            problems[f"{v.key}-repeats"] = (
                f"{view_label(v.key)}: repeats are among the images taken, so there are fewer of them than images."
            )
        elif v.repeats and v.repeat_reason not in REPEAT_REASONS:
            problems[f"{v.key}-repeat_reason"] = f"{view_label(v.key)}: give the reason for the repeat."
        elif v.repeats and v.repeat_reason == "other" and not v.repeat_detail.strip():
            problems[f"{v.key}-repeat_detail"] = f"{view_label(v.key)}: describe the reason for the repeat."
    missing = [key for key in expected.keys if key in by_key and by_key[key].taken == 0]
    if missing and not incomplete:
        problems["incomplete"] = (
            f"No {', '.join(view_label(k) for k in missing)} image: mark the exam incomplete and say why."
        )
    if incomplete and not incomplete_reason.strip():
        problems["incomplete_reason"] = "Say why the exam is incomplete."
    return problems
