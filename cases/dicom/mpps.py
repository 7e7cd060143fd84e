"""Modality Performed Procedure Step SCP (1.2.840.10008.3.1.2.3.3, PS3.4 F.7): N-CREATE and N-SET.

The modality tells the platform it has started a procedure step (N-CREATE, status IN PROGRESS, with the worklist
item's Accession Number in the Scheduled Step Attributes Sequence) and how it ended (N-SET COMPLETED or
DISCONTINUED, with the Performed Series Sequence listing the images taken, and for DISCONTINUED the Discontinuation
Reason Code Sequence). This module reads the messages; cases.screening.mpps decides what they do to the appointment.

Statuses: 0x0000 success; 0x0120 missing attribute (no Performed Procedure Step Status in an N-CREATE); 0x0106
invalid attribute value (an N-CREATE not IN PROGRESS, an unknown status); 0x0111 duplicate SOP instance (an
N-CREATE of a step that exists); 0x0112 no such SOP instance (an N-SET of a step never created); 0x0110 processing
failure, with the Error Comment "Performed Procedure Step Object may no longer be updated" (Error ID 0xA710) for an
N-SET after COMPLETED or DISCONTINUED, or when the platform cannot record it now (the modality tries again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from cases.dicom.received import AssociationSummary
from cases.screening.mpps import StepMessage, StepOutcome

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
MISSING_ATTRIBUTE = 0x0120
MAY_NO_LONGER_BE_UPDATED = 0xA710  # the Error ID of PS3.4 F.7.2.2.4.2
NO_SUCH_SOP_CLASS = 0x0118
STATUSES = ("IN PROGRESS", "COMPLETED", "DISCONTINUED")


@dataclass(frozen=True)
class MppsService:
    """What records the steps (cases.screening.mpps.mpps_create / mpps_update in the listener)."""

    create: Callable[[StepMessage], StepOutcome]
    update: Callable[[StepMessage], StepOutcome]


def mpps_n_create_event(event, *, summary: AssociationSummary, service: MppsService):
    """The listener's EVT_N_CREATE handler (noted in the association's summary for its audit row)."""
    request = event.request
    if str(request.AffectedSOPClassUID) != ModalityPerformedProcedureStep:
        return NO_SUCH_SOP_CLASS, None
    status, answer = mpps_n_create(request=request, attributes=event.attribute_list, service=service,
                                   calling_ae_title=summary.calling_ae_title, address=summary.address)  # fmt: skip
    _note(summary, "N-CREATE", request.AffectedSOPInstanceUID, status)
    return status, answer


def mpps_n_set_event(event, *, summary: AssociationSummary, service: MppsService):
    """The listener's EVT_N_SET handler."""
    request = event.request
    if str(request.RequestedSOPClassUID) != ModalityPerformedProcedureStep:
        return NO_SUCH_SOP_CLASS, None
    status, answer = mpps_n_set(request=request, modifications=event.modification_list, service=service,
                                calling_ae_title=summary.calling_ae_title, address=summary.address)  # fmt: skip
    _note(summary, "N-SET", request.RequestedSOPInstanceUID, status)
    return status, answer


def _note(summary: AssociationSummary, operation: str, uid, status) -> None:
    code = status if isinstance(status, int) else int(status.Status)
    comment = "" if isinstance(status, int) else str(status.get("ErrorComment", ""))
    summary.mpps.append({"operation": operation, "sop_instance_uid": str(uid or ""), "status": f"0x{code:04X}",
                         "comment": comment})  # fmt: skip
    log = logger.info if code == SUCCESS else logger.warning
    log("DICOM %s@%s: MPPS %s %s answered 0x%04X %s", summary.calling_ae_title, summary.address, operation, uid,
        code, comment)  # fmt: skip


def mpps_n_create(
    *, request, attributes: Dataset, service: MppsService, calling_ae_title: str, address: str
) -> tuple[Dataset | int, Dataset | None]:
    """(status, attribute list) for pynetdicom's EVT_N_CREATE."""
    uid = str(request.AffectedSOPInstanceUID or "") or str(generate_uid())
    status = _text(attributes.get("PerformedProcedureStepStatus")).upper()
    if not status:
        return _failure(MISSING_ATTRIBUTE, "Performed Procedure Step Status (0040,0252) missing"), None
    if status != "IN PROGRESS":
        return _failure(INVALID_ATTRIBUTE_VALUE, f"N-CREATE must be IN PROGRESS, not {status}"), None
    accessions = tuple(
        _text(item.get("AccessionNumber")) for item in attributes.get("ScheduledStepAttributesSequence") or []
    )
    message = StepMessage(
        sop_instance_uid=uid,
        status=status,
        accession_numbers=tuple(a for a in accessions if a),
        station_ae_title=_text(attributes.get("PerformedStationAETitle")) or calling_ae_title,
        peer_address=address,
        referenced_sop_instance_uids=referenced_images(attributes),
        attributes=_json(attributes),
    )
    try:
        outcome = service.create(message)
    except Exception:
        logger.exception("MPPS N-CREATE %s could not be recorded", uid)
        return _failure(PROCESSING_FAILURE, "Cannot record the step now; try again later"), None
    if outcome.result == "duplicate":
        return _failure(DUPLICATE_SOP_INSTANCE, outcome.detail), None
    answer = Dataset()
    answer.update(attributes)
    if request.AffectedSOPInstanceUID is None:
        answer.AffectedSOPInstanceUID = uid  # pynetdicom moves it into the response (PS3.7 10.1.5.1.4)
    return SUCCESS, answer


def mpps_n_set(
    *, request, modifications: Dataset, service: MppsService, calling_ae_title: str, address: str
) -> tuple[Dataset | int, Dataset | None]:
    """(status, attribute list) for pynetdicom's EVT_N_SET."""
    uid = str(request.RequestedSOPInstanceUID or "")
    status = _text(modifications.get("PerformedProcedureStepStatus")).upper()
    if status and status not in STATUSES:
        return _failure(INVALID_ATTRIBUTE_VALUE, f"Unknown Performed Procedure Step Status {status}"), None
    message = StepMessage(
        sop_instance_uid=uid,
        status="" if status == "IN PROGRESS" else status,
        station_ae_title=calling_ae_title,
        peer_address=address,
        referenced_sop_instance_uids=referenced_images(modifications),
        discontinuation_reason=discontinuation_reason(modifications) if status == "DISCONTINUED" else "",
        attributes=_json(modifications),
    )
    try:
        outcome = service.update(message)
    except Exception:
        logger.exception("MPPS N-SET %s could not be recorded", uid)
        return _failure(PROCESSING_FAILURE, "Cannot record the step now; try again later"), None
    if outcome.result == "unknown":
        return _failure(NO_SUCH_SOP_INSTANCE, outcome.detail), None
    if outcome.result == "final":
        failure = _failure(PROCESSING_FAILURE, outcome.detail)
        failure.ErrorID = MAY_NO_LONGER_BE_UPDATED
        return failure, None
    answer = Dataset()
    answer.update(modifications)
    return SUCCESS, answer


def referenced_images(attributes: Dataset) -> tuple[str, ...]:
    """SOP Instance UIDs of the images in the Performed Series Sequence."""
    found = []
    for series in attributes.get("PerformedSeriesSequence") or []:
        for image in series.get("ReferencedImageSequence") or []:
            uid = _text(image.get("ReferencedSOPInstanceUID"))
            if uid and uid not in found:
                found.append(uid)
    return tuple(found)


def discontinuation_reason(attributes: Dataset) -> str:
    reasons = []
    for code in attributes.get("PerformedProcedureStepDiscontinuationReasonCodeSequence") or []:
        reasons.append(_text(code.get("CodeMeaning")) or _text(code.get("CodeValue")))
    comment = _text(attributes.get("CommentsOnThePerformedProcedureStep"))
    return "; ".join(r for r in [*reasons, comment] if r)


def _json(attributes: Dataset) -> dict:
    try:
        return attributes.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda element: "")
    except Exception:  # an odd value must not cost the step: the fields above are what the platform uses
        return {}


def _failure(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]
    return status


def _text(value) -> str:
    return "" if value is None else str(value).strip()
