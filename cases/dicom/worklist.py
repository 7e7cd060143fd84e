"""Modality Worklist C-FIND SCP (Modality Worklist Information Model - FIND, 1.2.840.10008.5.1.4.31, PS3.4 K).

The modality asks which women are booked on it (by date, modality, station AE title, patient, accession...); each
scheduled or checked-in appointment is one worklist item (cases.screening.worklist) with its Scheduled Procedure
Step. Matching follows PS3.4 C.2.2.2: universal matching (a key sent empty), single value matching (person names
without regard to case), wildcards '*' and '?' on text, range matching on dates and times ('20261207-20261208',
'0800-1200', open-ended either side), UID lists, and sequence matching inside the Scheduled Procedure Step Sequence
(the item matches when its step matches every key given there). The answer holds exactly the keys asked for (a key
the platform does not hold comes back empty), in UTF-8 (Specific Character Set ISO_IR 192).

Statuses: 0xFF00 per item, then 0x0000; 0xFE00 when the modality cancels; 0xA900 for an identifier that cannot be
used (a malformed date range); 0xC000 when the platform cannot answer (database down: the modality tries again).
"""

from __future__ import annotations

import copy
import fnmatch
import logging
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from cases.dicom.received import AssociationSummary
from cases.screening.worklist import WorklistEntry, WorklistFilter

logger = logging.getLogger(__name__)

PENDING = 0xFF00
SUCCESS = 0x0000
CANCELLED = 0xFE00
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000
UTF8 = "ISO_IR 192"

WorklistSource = Callable[[WorklistFilter], list[WorklistEntry]]
_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")


class QueryError(ValueError):
    """The identifier cannot be used as a worklist query; the message says why (the Error Comment)."""


def item_dataset(entry: WorklistEntry, *, calling_ae_title: str = "") -> Dataset:
    """Every attribute the platform gives a worklist item (PS3.4 Table K.6-1's return keys that it holds). An
    appointment booked on no particular unit of its site is scheduled on whichever modality asks."""
    ds = Dataset()
    ds.SpecificCharacterSet = UTF8
    ds.AccessionNumber = entry.accession_number
    ds.ReferringPhysicianName = ""
    ds.PatientName = entry.patient_name
    ds.PatientID = entry.patient_id
    ds.PatientBirthDate = entry.patient_birth_date.strftime("%Y%m%d") if entry.patient_birth_date else ""
    ds.PatientSex = entry.patient_sex
    ds.StudyInstanceUID = entry.study_instance_uid
    ds.RequestedProcedureID = entry.requested_procedure_id
    ds.RequestedProcedureDescription = entry.requested_procedure_description
    ds.StudyDescription = entry.requested_procedure_description
    step = Dataset()
    step.Modality = entry.modality
    step.ScheduledStationAETitle = entry.station_ae_title or calling_ae_title
    step.ScheduledProcedureStepStartDate = entry.starts_at.strftime("%Y%m%d")
    step.ScheduledProcedureStepStartTime = entry.starts_at.strftime("%H%M%S")
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = entry.requested_procedure_description
    step.ScheduledProcedureStepID = entry.accession_number
    step.ScheduledProcedureStepLocation = entry.site
    step.ScheduledProcedureStepStatus = entry.step_status
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


# --- The query -------------------------------------------------------------------------------------------------


def query_filter(identifier: Dataset) -> WorklistFilter:
    """What the database can narrow by: the step's start date (or range), an exact patient ID or accession."""
    date_from = date_to = None
    steps = identifier.get("ScheduledProcedureStepSequence")
    if steps:
        value = _text(steps[0].get("ScheduledProcedureStepStartDate"))
        if value:
            low, high = _range(value, "DA")
            date_from = _as_date(low) if low else None
            date_to = _as_date(high) if high else None
    patient_id, accession = _text(identifier.get("PatientID")), _text(identifier.get("AccessionNumber"))
    return WorklistFilter(
        date_from=date_from,
        date_to=date_to,
        patient_id=patient_id if patient_id and not _has_wildcard(patient_id) else "",
        accession_number=accession if accession and not _has_wildcard(accession) else "",
    )


def matches(query: Dataset, item: Dataset) -> bool:
    """Whether `item` matches every key of `query` (PS3.4 C.2.2.2)."""
    return all(_element_matches(element, item) for element in query if element.keyword != "SpecificCharacterSet")


def answer(query: Dataset, item: Dataset) -> Dataset:
    """The item as the query asked for it: its keys, and only those (empty where the platform holds no value)."""
    out = _projected(query, item)
    out.SpecificCharacterSet = item.SpecificCharacterSet
    return out


def _projected(query: Dataset, item: Dataset) -> Dataset:
    out = Dataset()
    for element in query:
        if element.keyword == "SpecificCharacterSet":
            continue
        held = item.get(element.tag)
        if element.VR == "SQ":
            if held is None:
                out.add_new(element.tag, "SQ", Sequence())
            elif not element.value:  # universal sequence matching: the whole sequence
                out.add(copy.deepcopy(held))
            else:
                sub = element.value[0]
                found = [_projected(sub, i) for i in held.value if matches(sub, i)]
                out.add_new(element.tag, "SQ", Sequence(found))
        elif held is not None:
            out.add(copy.deepcopy(held))
        else:
            out.add_new(element.tag, element.VR, None)
    return out


def _element_matches(element, item: Dataset) -> bool:
    held = item.get(element.tag)
    if element.VR == "SQ":
        if not element.value or held is None:
            return True  # universal sequence matching; a sequence the platform does not hold is not a condition
        return any(matches(element.value[0], candidate) for candidate in held.value)
    value = element.value
    if value is None or value == "" or (isinstance(value, MultiValue) and not any(str(v) for v in value)):
        return True  # universal matching
    if held is None:
        return True  # a key the platform does not hold: answered empty, not a condition (PS3.4 C.2.2.1)
    target = _text(held.value)
    if isinstance(value, MultiValue) and element.VR == "UI":
        return target in {str(v) for v in value}  # list of UID matching
    wanted = _text(value)
    if wanted == "*":
        return True
    if element.VR in ("DA", "TM", "DT") and "-" in wanted:
        low, high = _range(wanted, element.VR)
        key = _comparable(target, element.VR, end=False)
        return (not low or key >= _comparable(low, element.VR, end=False)) and (
            not high or key <= _comparable(high, element.VR, end=True)
        )
    if element.VR == "TM":
        return _comparable(target, "TM", end=False) == _comparable(wanted, "TM", end=False)
    if element.VR == "PN":
        wanted, target = _person_name(wanted).casefold(), _person_name(target).casefold()
    if _has_wildcard(wanted) and element.VR not in ("DA", "TM", "DT", "UI"):
        return fnmatch.fnmatchcase(target, wanted.replace("[", "[[]"))
    return target == wanted


def _range(value: str, vr: str) -> tuple[str, str]:
    """'a-b', 'a-' or '-b' (a single value is the range from it to itself); QueryError when malformed."""
    low, _, high = value.partition("-") if "-" in value else (value, "", value)
    pattern = _DATE if vr == "DA" else _TIME if vr == "TM" else None
    for part in (low, high):
        if part and pattern is not None and not pattern.match(part):
            raise QueryError(f"{vr} range {value!r} is not valid (PS3.5 6.2, e.g. 20261207-20261208)")
    if not low and not high:
        raise QueryError(f"{vr} range {value!r} is empty")
    return low, high


def _comparable(value: str, vr: str, *, end: bool) -> str:
    if vr != "TM":
        return value
    digits = value.split(".")[0]
    return digits + ("99" if end else "00") * ((6 - len(digits)) // 2)


def _as_date(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError as exc:
        raise QueryError(f"{value!r} is not a date") from exc


def _person_name(value: str) -> str:
    return value.rstrip("^ ")


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


# --- The C-FIND handler ----------------------------------------------------------------------------------------


def worklist_find(
    identifier: Dataset, *, source: WorklistSource, cancelled: Callable[[], bool], calling_ae_title: str = ""
) -> Iterator:
    """(status, answer) pairs for pynetdicom's EVT_C_FIND: one pending answer per matching item, then success."""
    try:
        where = query_filter(identifier)
    except QueryError as exc:
        yield _status(IDENTIFIER_DOES_NOT_MATCH, str(exc)), None
        return
    try:
        entries = source(where)
    except Exception:
        logger.exception("Modality worklist query failed")
        yield _status(UNABLE_TO_PROCESS, "The worklist cannot be read now; try again later"), None
        return
    for entry in entries:
        if cancelled():
            yield CANCELLED, None
            return
        item = item_dataset(entry, calling_ae_title=calling_ae_title)
        try:
            if matches(identifier, item):
                yield PENDING, answer(identifier, item)
        except QueryError as exc:
            yield _status(IDENTIFIER_DOES_NOT_MATCH, str(exc)), None
            return
    yield SUCCESS, None


def _status(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]
    return status


def worklist_c_find(event, *, summary: AssociationSummary, source: WorklistSource) -> Iterator:
    """The listener's EVT_C_FIND handler: the answers, and the query noted in the association's summary (keys asked,
    accession numbers answered, status) for its audit row."""
    try:
        identifier = event.identifier
    except Exception as exc:
        logger.warning("DICOM %s: C-FIND identifier cannot be read: %s", summary.calling_ae_title, exc)
        yield UNABLE_TO_PROCESS, None
        return
    answered = []
    found = worklist_find(identifier, source=source, cancelled=lambda: event.is_cancelled,
                          calling_ae_title=summary.calling_ae_title)  # fmt: skip
    for status, item in found:
        if item is not None:
            answered.append(str(item.get("AccessionNumber", "")))
        else:  # the final status: noted before it is sent (pynetdicom does not resume the handler after it)
            code = status if isinstance(status, int) else int(status.Status)
            keys = sorted(e.keyword or str(e.tag) for e in identifier if e.keyword != "SpecificCharacterSet")
            summary.worklist_queries.append({"keys": keys, "answered": answered, "status": f"0x{code:04X}"})
            logger.info(
                "DICOM %s@%s: worklist query answered with %d item(s), status 0x%04X",
                summary.calling_ae_title, summary.address, len(answered), code,
            )  # fmt: skip
        yield status, item
