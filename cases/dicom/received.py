"""The listener's configuration, what it records per association, and the contract between the receivers
(C-STORE listener, STOW-RS) and the one ingestion service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cases.dicom.peers import AllowedPeer, ae_title_check, peers_parse
from cases.dicom.spool import Sender


@dataclass(frozen=True)
class ReceivedInstance:
    """One instance as received, already durable in the spool: `spooled_path` holds it in DICOM Part 10 (the dataset
    exactly as sent, with file meta for its transfer syntax). Ingestion reads it from there: it is not held in
    memory."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    sender: Sender
    spooled_path: Path


@dataclass(frozen=True)
class IngestOutcome:
    """What ingestion decided about one instance."""

    status: str  # 'stored' | 'duplicate' | 'rejected'
    code: str = ""  # the rejection code (statuses.STATUS_FOR_CODE)
    reason: str = ""  # a sentence for people
    coerced: str = ""  # stored, but recorded with some values changed (-> 0xB000 warning)
    image_id: int | None = None
    study_id: int | None = None

    def __post_init__(self) -> None:
        if self.status not in ("stored", "duplicate", "rejected"):
            raise ValueError(f"unknown ingestion status {self.status!r}")


Ingest = Callable[[ReceivedInstance], IngestOutcome]


@dataclass(frozen=True)
class ListenerConfig:
    ae_title: str
    port: int
    bind_address: str
    allowed_peers: tuple[AllowedPeer, ...]
    spool_dir: Path
    max_associations: int = 10
    acse_timeout: float = 30
    dimse_timeout: float = 60
    network_timeout: float = 60
    max_pdu: int = 16382

    @classmethod
    def from_settings(cls) -> ListenerConfig:
        from django.conf import settings

        return cls(
            ae_title=ae_title_check(settings.DICOM_AE_TITLE, what="DICOM_AE_TITLE"),
            port=int(settings.DICOM_PORT),
            bind_address=settings.DICOM_BIND_ADDRESS,
            allowed_peers=peers_parse(settings.DICOM_ALLOWED_PEERS),
            spool_dir=Path(settings.DICOM_SPOOL_DIR),
            max_associations=int(settings.DICOM_MAX_ASSOCIATIONS),
            acse_timeout=float(settings.DICOM_ACSE_TIMEOUT),
            dimse_timeout=float(settings.DICOM_DIMSE_TIMEOUT),
            network_timeout=float(settings.DICOM_NETWORK_TIMEOUT),
            max_pdu=int(settings.DICOM_MAX_PDU),
        )


@dataclass
class AssociationSummary:
    association_id: str
    address: str
    port: int
    calling_ae_title: str = ""
    called_ae_title: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    outcome: str = "open"  # released | aborted | rejected | closed
    rejection_reason: str = ""
    echoes: int = 0
    stored: int = 0
    duplicates: int = 0
    warnings: int = 0
    refused: int = 0
    refused_contexts: list[str] = field(default_factory=list)
    refusals: list[dict] = field(default_factory=list)  # per refused instance: uid, status, reason
    worklist_queries: list[dict] = field(default_factory=list)  # per C-FIND: the keys, the accession numbers answered
    mpps: list[dict] = field(default_factory=list)  # per N-CREATE / N-SET: the step and the status answered

    def as_json(self) -> dict:
        data = dict(self.__dict__)
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        return data


AssociationAudit = Callable[[AssociationSummary], None]
