"""Sending result objects to the hospital's archive: C-STORE (pynetdicom SCU) or STOW-RS, one delivery row per
object and destination, each attempt audited.

A destination that is down delays delivery and loses nothing: each attempt is asked for through the outbox
(core.outbox), and a failed one asks for the next after an exponential backoff, up to DICOM_DELIVERY_MAX_ATTEMPTS;
then the row is failed and the study page and the operations page offer a retry. Sending the same object twice is
harmless: the SOP Instance UID is the same, so the archive keeps one instance.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydicom import dcmread
from pynetdicom import AE

from audit.services import audit_record
from cases.models import DicomDelivery
from core import storage
from core.errors import ApplicationError
from core.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

_C_STORE = re.compile(r"^C-STORE (?P<aet>[^@]{1,16})@(?P<host>[^:]+):(?P<port>\d+)$")
_STOW = re.compile(r"^STOW-RS (?P<url>https?://\S+)$")


class DeliveryError(Exception):
    """The destination did not take the object (unreachable, refused, or answered with a failure)."""


@dataclass(frozen=True)
class AttemptOutcome:
    status: str
    retry_in: int | None = None  # seconds until the next attempt, when one is due


def dicom_delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """One attempt at one delivery. Safe to run twice: a delivered or failed row is left alone."""
    with transaction.atomic():
        delivery = DicomDelivery.objects.select_for_update().select_related("result").get(pk=delivery_id)
        if delivery.status != DicomDelivery.Status.PENDING:
            return AttemptOutcome(delivery.status)
        delivery.attempts += 1
        delivery.save(update_fields=["attempts", "updated_at"])
    try:
        detail = send_object(delivery.destination, storage.read(delivery.result.file))
    except (DeliveryError, OSError) as exc:
        return _attempt_failed(delivery, str(exc))
    with transaction.atomic():
        delivery.status, delivery.delivered_at, delivery.last_error = DicomDelivery.Status.DELIVERED, timezone.now(), ""
        delivery.next_attempt_at = None
        delivery.save(update_fields=["status", "delivered_at", "last_error", "next_attempt_at", "updated_at"])
        _audit(delivery, "dicom.result_delivered", detail=detail)
    logger.info("Delivered %s to %s (%s)", delivery.result.sop_instance_uid, delivery.destination, detail)
    return AttemptOutcome(DicomDelivery.Status.DELIVERED)


def dicom_delivery_retry(*, delivery_id: int, user) -> DicomDelivery:
    """A person asks to try a failed (or stuck) delivery again: attempts start over."""
    with transaction.atomic():
        delivery = DicomDelivery.objects.select_for_update().select_related("result").get(pk=delivery_id)
        if delivery.status == DicomDelivery.Status.DELIVERED:
            raise ApplicationError("This result has already been delivered.")
        delivery.status, delivery.attempts, delivery.next_attempt_at = DicomDelivery.Status.PENDING, 0, None
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        audit_record(
            action="dicom.delivery_retried", actor=user, obj=delivery, study_id=delivery.result.study_id,
            details={"destination": delivery.destination, "sop_instance_uid": delivery.result.sop_instance_uid},
        )  # fmt: skip
        dicom_delivery_request(delivery)
    return delivery


def backoff_seconds(attempts: int) -> int:
    base = settings.DICOM_DELIVERY_BACKOFF_SECONDS
    return int(min(base * 2 ** max(attempts - 1, 0), settings.DICOM_DELIVERY_BACKOFF_MAX_SECONDS))


def send_object(destination: str, data: bytes) -> str:
    """Send one DICOM file to a destination; a short description of the answer, or DeliveryError."""
    if match := _C_STORE.match(destination):
        return _c_store(data, ae_title=match["aet"], host=match["host"], port=int(match["port"]))
    if match := _STOW.match(destination):
        return _stow_rs(data, url=match["url"])
    raise DeliveryError(f"Unknown destination {destination!r}")


def _attempt_failed(delivery: DicomDelivery, error: str) -> AttemptOutcome:
    last = delivery.attempts >= settings.DICOM_DELIVERY_MAX_ATTEMPTS
    retry_in = None if last else backoff_seconds(delivery.attempts)
    with transaction.atomic():
        delivery.last_error = error[:2000]
        delivery.status = DicomDelivery.Status.FAILED if last else DicomDelivery.Status.PENDING
        delivery.next_attempt_at = None if last else timezone.now() + timedelta(seconds=retry_in)
        delivery.save(update_fields=["last_error", "status", "next_attempt_at", "updated_at"])
        if not last:
            dicom_delivery_request(delivery, send_after=delivery.next_attempt_at)
        _audit(delivery, "dicom.result_delivery_failed" if last else "dicom.result_delivery_attempt_failed",
               detail=error[:500])  # fmt: skip
    logger.warning("Delivery %s to %s failed (attempt %d): %s", delivery.pk, delivery.destination,
                   delivery.attempts, error)  # fmt: skip
    return AttemptOutcome(delivery.status, retry_in)


def _audit(delivery: DicomDelivery, action: str, *, detail: str) -> None:
    audit_record(
        action=action,
        obj=delivery,
        study_id=delivery.result.study_id,
        details={
            "destination": delivery.destination,
            "sop_instance_uid": delivery.result.sop_instance_uid,
            "kind": delivery.result.kind,
            "attempt": delivery.attempts,
            "detail": detail,
        },
    )


def _c_store(data: bytes, *, ae_title: str, host: str, port: int) -> str:
    from io import BytesIO

    ds = dcmread(BytesIO(data))
    ae = AE(ae_title=settings.DICOM_AE_TITLE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
    assoc = ae.associate(host, port, ae_title=ae_title)
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "no connection"
        raise DeliveryError(f"No association with {ae_title}@{host}:{port} ({why})")
    try:
        status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    if not status or "Status" not in status:
        raise DeliveryError(f"{ae_title} gave no C-STORE response")
    code = int(status.Status)
    if code != 0x0000 and not 0xB000 <= code <= 0xBFFF:  # warnings are stored instances
        raise DeliveryError(f"{ae_title} answered C-STORE with 0x{code:04X} {status.get('ErrorComment', '')}".strip())
    return f"C-STORE status 0x{code:04X}"


def _stow_rs(data: bytes, *, url: str) -> str:
    boundary = uuid.uuid4().hex
    body = b"".join(
        [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), data, f"\r\n--{boundary}--\r\n".encode()]
    )
    request = urllib.request.Request(url.rstrip("/") + "/studies", data=body, method="POST")
    request.add_header("Content-Type", f'multipart/related; type="application/dicom"; boundary={boundary}')
    request.add_header("Accept", "application/dicom+json")
    if settings.DICOM_DESTINATION_STOW_AUTHORIZATION:
        request.add_header("Authorization", settings.DICOM_DESTINATION_STOW_AUTHORIZATION)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return f"STOW-RS HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"STOW-RS {url} answered HTTP {exc.code}: {exc.read()[:300]!r}") from exc
    except urllib.error.URLError as exc:
        raise DeliveryError(f"STOW-RS {url} unreachable: {exc.reason}") from exc


DELIVERY_TASK = "cases.dicom_delivery_send"  # by name: cases.tasks.dicom_delivery_send calls into this module


def dicom_delivery_request(delivery: DicomDelivery, *, send_after=None) -> None:
    """Ask for an attempt at this delivery, in the caller's transaction (core.outbox); `send_after`: a backoff."""
    result = delivery.result
    outbox_enqueue(
        key=f"dicom-delivery:{delivery.pk}",
        task=DELIVERY_TASK,
        kwargs={"delivery_id": delivery.pk},
        description=f"Sending {result.get_kind_display()} to {delivery.destination}",
        subject=f"study:{result.study_id}",
        send_after=send_after,
    )
