"""The DICOM listener: a C-ECHO and C-STORE SCP (pynetdicom) for mammography units and PACS.

- Who: an association is accepted only from a configured peer (calling AE title and address, cases.dicom.peers)
  and only when addressed to our own AE title; anyone else gets A-ASSOCIATE-RJ "calling (or called) AE title not
  recognised", and the refusal is logged with its reason and audited.
- What: Digital Mammography X-Ray (for presentation and for processing) and Secondary Capture (CBIS-DDSM), in every
  transfer syntax the platform's decoder reads; Verification. Other SOP classes (tomosynthesis, SR, RT, other
  modalities) are refused at negotiation (presentation context result "abstract syntax not supported"), each
  refusal logged with its reason; an instance whose header contradicts its request gets 0xA900.
- How: each instance is written durably to the spool (cases.dicom.spool), then handed to ONE ingestion function
  (the platform's upload service), and only its decision becomes the C-STORE status (cases.dicom.statuses): success
  is sent only for what is stored. One association's instances are independent: a bad one is refused, the others
  stored.
- Worklist and MPPS (when given a `worklist` source and an `mpps` service, as `manage.py dicom_listener` does): the
  Modality Worklist C-FIND SCP (cases.dicom.worklist) and the Modality Performed Procedure Step N-CREATE / N-SET
  SCP (cases.dicom.mpps), for the same allow-listed peers on the same AE title and port.
- Audit: one summary per association (peer, AE titles, counts stored, duplicate, refused, refused contexts,
  worklist queries and the accession numbers answered, MPPS messages), given to the `audit` callable when the
  association ends.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime

from django.db import InterfaceError, OperationalError
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityPerformedProcedureStep, ModalityWorklistInformationFind, Verification

from cases.dicom import statuses
from cases.dicom.conformance import ACCEPTED_SOP_CLASSES, decodable_transfer_syntaxes
from cases.dicom.mpps import MppsService, mpps_n_create_event, mpps_n_set_event
from cases.dicom.peers import peer_allowed, peer_refusal_reason
from cases.dicom.received import (
    AssociationAudit,
    AssociationSummary,
    Ingest,
    IngestOutcome,
    ListenerConfig,
    ReceivedInstance,
)
from cases.dicom.spool import Sender, Spool, SpooledFile
from cases.dicom.worklist import WorklistSource, worklist_c_find

__all__ = ["AssociationSummary", "DicomListener", "IngestOutcome", "ListenerConfig", "ReceivedInstance"]

logger = logging.getLogger(__name__)

# A-ASSOCIATE-RJ: rejected-permanent, by the service user (PS3.8 9.3.4).
REJECT_CALLING_AET = (0x01, 0x01, 0x03)


class DicomListener:
    def __init__(
        self,
        *,
        config: ListenerConfig,
        ingest: Ingest,
        audit: AssociationAudit | None = None,
        worklist: WorklistSource | None = None,
        mpps: MppsService | None = None,
    ) -> None:
        self.config = config
        self.ingest = ingest
        self.audit = audit or (lambda summary: None)
        self.worklist = worklist
        self.mpps = mpps
        self.spool = Spool(config.spool_dir)
        self.transfer_syntaxes = decodable_transfer_syntaxes()
        self._summaries: dict[int, AssociationSummary] = {}
        self._lock = threading.Lock()
        self._sequence = 0
        self._server = None
        self.ae = self._application_entity()

    # --- Life cycle --------------------------------------------------------------------------------------------

    def start(self, *, block: bool = True) -> None:
        """Recover what a previous run left in the spool, then serve (blocking, or in background threads)."""
        self.spool.prepare()
        self.recover()
        if not self.config.allowed_peers:
            logger.warning("DICOM_ALLOWED_PEERS is empty: every association will be rejected")
        logger.info(
            "DICOM listener %s on %s:%s; peers: %s; SOP classes: %s; %d transfer syntaxes",
            self.config.ae_title, self.config.bind_address, self.config.port,
            ", ".join(str(p) for p in self.config.allowed_peers) or "none",
            ", ".join(ACCEPTED_SOP_CLASSES.values()) + self._also(), len(self.transfer_syntaxes),
        )  # fmt: skip
        self._server = self.ae.start_server(
            (self.config.bind_address, self.config.port), block=block, evt_handlers=self._handlers()
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0 in tests)."""
        return self._server.server_address[1] if self._server else self.config.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        self.ae.shutdown()

    def recover(self) -> AssociationSummary | None:
        """Ingest what a previous run received but had not decided (it was never acknowledged)."""
        leftovers = list(self.spool.leftovers())
        if not leftovers:
            return None
        summary = AssociationSummary(association_id="spool-recovery", address="", port=0, outcome="recovered")
        for spooled in leftovers:
            try:
                header = dcmread(spooled.path, stop_before_pixels=True)
                instance = ReceivedInstance(
                    sop_class_uid=str(header.SOPClassUID),
                    sop_instance_uid=str(header.SOPInstanceUID),
                    transfer_syntax_uid=str(header.file_meta.TransferSyntaxUID),
                    sender=spooled.peer,
                    spooled_path=spooled.path,
                )
            except Exception as exc:  # unreadable leftover: keep it for an engineer, do not loop on it
                logger.error("Spooled file %s cannot be read (%s); moved to failed/", spooled.path, exc)
                self.spool.move_to_failed(spooled)
                summary.refused += 1
                continue
            self._ingest(instance, spooled, summary)
        summary.ended_at = datetime.now(UTC)
        logger.info(
            "Spool recovery: %d stored, %d duplicates, %d refused", summary.stored, summary.duplicates, summary.refused
        )
        self._audit(summary)
        return summary

    # --- pynetdicom ---------------------------------------------------------------------------------------------

    def _application_entity(self) -> AE:
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_associations = self.config.max_associations
        ae.acse_timeout = self.config.acse_timeout
        ae.dimse_timeout = self.config.dimse_timeout
        ae.network_timeout = self.config.network_timeout
        ae.maximum_pdu_size = self.config.max_pdu
        ae.require_called_aet = True  # A-ASSOCIATE-RJ "called AE title not recognised" otherwise
        for sop_class in ACCEPTED_SOP_CLASSES:
            ae.add_supported_context(sop_class, self.transfer_syntaxes)
        ae.add_supported_context(Verification)
        if self.worklist is not None:
            ae.add_supported_context(ModalityWorklistInformationFind)
        if self.mpps is not None:
            ae.add_supported_context(ModalityPerformedProcedureStep)
        return ae

    def _handlers(self) -> list:
        return [
            (evt.EVT_CONN_OPEN, self._on_open),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_N_CREATE, self._on_n_create),
            (evt.EVT_N_SET, self._on_n_set),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_close),
        ]

    def _on_open(self, event) -> None:
        address, port = event.address[0], int(event.address[1])
        with self._lock:
            self._summaries[id(event.assoc)] = AssociationSummary(
                association_id=f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", address=address, port=port
            )

    def _summary(self, assoc) -> AssociationSummary:
        with self._lock:
            summary = self._summaries.get(id(assoc))
            if summary is None:  # an event before EVT_CONN_OPEN should not happen; never lose the count
                address = getattr(assoc.requestor, "address_info", None)
                summary = AssociationSummary(
                    association_id=uuid.uuid4().hex[:12],
                    address=address.address if address else "",
                    port=int(address.port) if address else 0,
                )
                self._summaries[id(assoc)] = summary
            return summary

    def _on_requested(self, event) -> None:
        summary = self._summary(event.assoc)
        request = event.assoc.requestor.primitive
        summary.calling_ae_title = str(request.calling_ae_title).strip()
        summary.called_ae_title = str(request.called_ae_title).strip()
        if peer_allowed(self.config.allowed_peers, ae_title=summary.calling_ae_title, address=summary.address):
            return
        summary.outcome = "rejected"
        summary.rejection_reason = peer_refusal_reason(
            self.config.allowed_peers, ae_title=summary.calling_ae_title, address=summary.address
        )
        logger.warning(
            "DICOM association from %s@%s:%s rejected (calling AE title not recognised): %s",
            summary.calling_ae_title, summary.address, summary.port, summary.rejection_reason,
        )  # fmt: skip
        event.assoc.acse.send_reject(*REJECT_CALLING_AET)
        # As pynetdicom's own rejection does: wait until the DUL has sent the A-ASSOCIATE-RJ before the reactor
        # closes the socket, or the peer sees a dropped connection instead of the reason.
        event.assoc.kill()

    def _on_rejected(self, event) -> None:
        summary = self._summary(event.assoc)
        summary.outcome = "rejected"
        if summary.called_ae_title != self.config.ae_title:
            summary.rejection_reason = (
                f"called AE title {summary.called_ae_title!r} is not ours ({self.config.ae_title!r})"
            )
        else:
            summary.rejection_reason = f"more than {self.config.max_associations} associations at once"
        logger.warning(
            "DICOM association from %s@%s rejected: %s",
            summary.calling_ae_title, summary.address, summary.rejection_reason,
        )  # fmt: skip

    def _on_accepted(self, event) -> None:
        summary = self._summary(event.assoc)
        for context in event.assoc.rejected_contexts:
            name = UID(context.abstract_syntax).name
            if context.result == 0x03:
                reason = f"{name}: SOP class not accepted (only mammograms, Secondary Capture{self._also()})"
            else:
                offered = ", ".join(UID(ts).name for ts in context.transfer_syntax)
                reason = f"{name}: none of the transfer syntaxes can be decoded ({offered})"
            summary.refused_contexts.append(reason)
            logger.warning(
                "DICOM %s@%s: presentation context refused: %s", summary.calling_ae_title, summary.address, reason
            )
        logger.info(
            "DICOM association %s from %s@%s:%s accepted (%d contexts, %d refused)",
            summary.association_id, summary.calling_ae_title, summary.address, summary.port,
            len(event.assoc.accepted_contexts), len(summary.refused_contexts),
        )  # fmt: skip

    def _also(self) -> str:
        return ", the modality worklist" * (self.worklist is not None) + ", MPPS" * (self.mpps is not None)

    def _on_echo(self, event) -> int:
        self._summary(event.assoc).echoes += 1
        return statuses.SUCCESS

    def _on_find(self, event):
        """Modality Worklist C-FIND (cases.dicom.worklist); the only C-FIND model offered."""
        if self.worklist is None:
            yield 0xC000, None
            return
        yield from worklist_c_find(event, summary=self._summary(event.assoc), source=self.worklist)

    def _on_n_create(self, event):
        """MPPS N-CREATE (cases.dicom.mpps)."""
        if self.mpps is None:
            return 0x0118, None  # no such SOP class
        return mpps_n_create_event(event, summary=self._summary(event.assoc), service=self.mpps)

    def _on_n_set(self, event):
        """MPPS N-SET (cases.dicom.mpps)."""
        if self.mpps is None:
            return 0x0118, None
        return mpps_n_set_event(event, summary=self._summary(event.assoc), service=self.mpps)

    def _on_store(self, event) -> Dataset:
        return self._response(self._store(event, self._summary(event.assoc)))

    def _store(self, event, summary: AssociationSummary) -> statuses.StoreStatus:
        request = event.request
        sop_class, sop_instance = str(request.AffectedSOPClassUID), str(request.AffectedSOPInstanceUID)
        transfer_syntax = str(event.context.transfer_syntax[0])
        if sop_class not in ACCEPTED_SOP_CLASSES:
            return self._refuse_code(
                summary, sop_instance, "sop_class_not_supported", f"SOP class {UID(sop_class).name} is not accepted"
            )
        try:
            dataset = event.dataset
            header_class, header_instance = str(dataset.SOPClassUID), str(dataset.SOPInstanceUID)
        except Exception as exc:
            logger.warning("DICOM %s: dataset of %s cannot be read: %s", summary.calling_ae_title, sop_instance, exc)
            return self._refuse_code(summary, sop_instance, "not_dicom", "The data set cannot be read")
        if (header_class, header_instance) != (sop_class, sop_instance):
            return self._refuse_code(
                summary, sop_instance, "sop_mismatch", "SOP Class/Instance UID in the data set differ from the request"
            )
        sender = Sender(
            ae_title=summary.calling_ae_title, address=summary.address, port=summary.port,
            called_ae_title=summary.called_ae_title, association_id=summary.association_id,
        )  # fmt: skip
        try:
            spooled = self.spool.write(
                event.encoded_dataset(include_meta=True), name=self._spool_name(summary), peer=sender
            )
        except OSError as exc:
            logger.error("DICOM spool write failed for %s: %s", sop_instance, exc)
            return self._refuse_code(
                summary, sop_instance, "storage_unavailable", "Storage unavailable, try again later"
            )
        # From here on the instance is its spool file: ingestion reads it from disk (no copy of its bytes is kept).
        instance = ReceivedInstance(
            sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax_uid=transfer_syntax,
            sender=sender, spooled_path=spooled.path,
        )  # fmt: skip
        return self._ingest(instance, spooled, summary)

    def _on_released(self, event) -> None:
        self._finish(event.assoc, "released")

    def _on_aborted(self, event) -> None:
        self._finish(event.assoc, "aborted")

    def _on_close(self, event) -> None:
        self._finish(event.assoc, "closed")

    # --- Decisions ----------------------------------------------------------------------------------------------

    def _ingest(
        self, instance: ReceivedInstance, spooled: SpooledFile, summary: AssociationSummary
    ) -> statuses.StoreStatus:
        """Hand one spooled instance to ingestion; its decision (or our failure) as a StoreStatus."""
        started = time.monotonic()
        try:
            outcome = self.ingest(instance)
        except (OperationalError, InterfaceError) as exc:  # kept in the spool: recovered on the next start
            logger.error("DICOM ingestion of %s: database unavailable: %s", instance.sop_instance_uid, exc)
            return self._refuse_code(
                summary, instance.sop_instance_uid, "database_unavailable", "Database unavailable, try again later"
            )
        except OSError as exc:
            logger.error("DICOM ingestion of %s: storage failed: %s", instance.sop_instance_uid, exc)
            return self._refuse_code(
                summary, instance.sop_instance_uid, "storage_unavailable", "Storage unavailable, try again later"
            )
        except Exception:
            logger.exception(
                "DICOM ingestion of %s failed; file moved to the spool's failed/", instance.sop_instance_uid
            )
            self.spool.move_to_failed(spooled)
            return self._refuse_code(
                summary, instance.sop_instance_uid, "internal_error", "Processing failure at the receiver"
            )
        self.spool.remove(spooled)
        elapsed = time.monotonic() - started
        if outcome.status == "rejected":
            status = statuses.status_for_rejection(outcome.code, outcome.reason)
            detail = statuses.peer_reason(outcome.code, outcome.reason)
            return self._refuse(summary, instance.sop_instance_uid, status, detail=detail, code=outcome.code)
        if outcome.status == "duplicate":
            summary.duplicates += 1
            logger.info("DICOM %s: %s already stored (acknowledged again)", summary.calling_ae_title,
                        instance.sop_instance_uid)  # fmt: skip
            return statuses.StoreStatus(statuses.SUCCESS)
        summary.stored += 1
        logger.info(
            "DICOM %s: stored %s (%s) as image %s of study %s in %.2f s",
            summary.calling_ae_title, instance.sop_instance_uid, UID(instance.sop_class_uid).name,
            outcome.image_id, outcome.study_id, elapsed,
        )  # fmt: skip
        if outcome.coerced:
            summary.warnings += 1
            return statuses.StoreStatus(statuses.WARNING_COERCED, statuses.error_comment(outcome.coerced))
        return statuses.StoreStatus(statuses.SUCCESS)

    def _refuse(
        self,
        summary: AssociationSummary,
        sop_instance: str,
        status: statuses.StoreStatus,
        *,
        detail: str = "",
        code: str = "",
    ) -> statuses.StoreStatus:
        summary.refused += 1
        summary.refusals.append(
            {"sop_instance_uid": sop_instance, "status": status.hex(), "code": code, "reason": detail or status.comment}
        )
        logger.warning(
            "DICOM %s@%s: instance %s refused with %s: %s",
            summary.calling_ae_title, summary.address, sop_instance, status.hex(), detail or status.comment,
        )  # fmt: skip
        return status

    def _refuse_code(self, summary: AssociationSummary, sop_instance: str, code: str, reason: str):
        return self._refuse(summary, sop_instance, statuses.status_for_rejection(code, reason), code=code)

    def _response(self, status: statuses.StoreStatus) -> Dataset:
        response = Dataset()
        response.Status = status.code
        if status.comment:
            response.ErrorComment = status.comment
        return response

    def _spool_name(self, summary: AssociationSummary) -> str:
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        return f"{time.time_ns():020d}-{summary.association_id}-{sequence:06d}"

    def _finish(self, assoc, outcome: str) -> None:
        with self._lock:
            summary = self._summaries.pop(id(assoc), None)
        if summary is None:
            return  # already finished by an earlier event of the same association
        if summary.outcome == "open":
            summary.outcome = outcome
        summary.ended_at = datetime.now(UTC)
        logger.info(
            "DICOM association %s from %s@%s %s: %d stored, %d duplicates, %d refused, %d contexts refused, "
            "%d worklist queries, %d MPPS messages",
            summary.association_id, summary.calling_ae_title, summary.address, summary.outcome, summary.stored,
            summary.duplicates, summary.refused, len(summary.refused_contexts), len(summary.worklist_queries),
            len(summary.mpps),
        )  # fmt: skip
        self._audit(summary)

    def _audit(self, summary: AssociationSummary) -> None:
        try:
            self.audit(summary)
        except Exception:  # the audit trail's failure is logged; it must not break the peer's association
            logger.exception("Audit of DICOM association %s failed", summary.association_id)
