"""The DICOM listener (cases/dicom/listener.py) on a real socket, spoken to by pynetdicom SCUs and by a real
Orthanc. Ingestion here is a small recorder that decodes with the platform's decoder; the platform's own upload
service is wired in by the dicom_listener command (tested with the worker in test_dicom_network.py)."""

from __future__ import annotations

import logging
import threading
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from django.db import OperationalError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless
from pynetdicom import AE
from pynetdicom.sop_class import (
    BasicTextSRStorage,
    BreastTomosynthesisImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    SecondaryCaptureImageStorage,
    Verification,
)

from cases.dicom.listener import DicomListener, IngestOutcome, ListenerConfig, ReceivedInstance
from cases.dicom.peers import peers_parse
from imaging.decoding import ImageRejected, decode_image
from tests.dicom_factory import SECONDARY_CAPTURE, make_dicom, make_sr_dicom, replace_first_frame
from tests.orthanc import ORTHANC_AET, orthanc_running


@pytest.fixture
def orthanc(tmp_path_factory):
    with orthanc_running(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


OUR_AET = "MAMMO_AI"
SCU_AET = "MG_ROOM_1"
MG = DigitalMammographyXRayImageStorageForPresentation


class RecordingIngest:
    """Stands in for the upload service: one record per SOP Instance UID, rejections from the real decoder."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.seen: list[ReceivedInstance] = []
        self.spool_was_durable: list[bool] = []
        self.fail_with: BaseException | None = None
        self.coerce = ""
        self.lock = threading.Lock()

    def __call__(self, instance: ReceivedInstance) -> IngestOutcome:
        data = instance.spooled_path.read_bytes()  # the instance is its spool file: on disk before ingestion is asked
        with self.lock:
            self.seen.append(instance)
            self.spool_was_durable.append(data[128:132] == b"DICM")
        if self.fail_with is not None:
            raise self.fail_with
        if instance.sop_instance_uid in self.stored:
            return IngestOutcome(status="duplicate")
        try:
            decode_image(filename="received.dcm", data=data)
        except ImageRejected as exc:
            return IngestOutcome(status="rejected", code=exc.code, reason=exc.reason)
        with self.lock:
            self.stored[instance.sop_instance_uid] = data
        return IngestOutcome(status="stored", coerced=self.coerce, image_id=len(self.stored), study_id=1)


@pytest.fixture
def ingest():
    return RecordingIngest()


@pytest.fixture
def audits():
    return []


def make_listener(tmp_path: Path, ingest, audits, peers=(f"{SCU_AET}@127.0.0.1", f"{ORTHANC_AET}@127.0.0.1")):
    config = ListenerConfig(
        ae_title=OUR_AET,
        port=0,
        bind_address="127.0.0.1",
        allowed_peers=peers_parse(peers),
        spool_dir=tmp_path / "spool",
        acse_timeout=10,
        dimse_timeout=30,
        network_timeout=30,
    )
    return DicomListener(config=config, ingest=ingest, audit=audits.append)


@pytest.fixture
def listener(tmp_path, ingest, audits):
    server = make_listener(tmp_path, ingest, audits)
    server.start(block=False)
    yield server
    server.stop()


def scu(ae_title: str = SCU_AET, contexts=((MG, [ExplicitVRLittleEndian]),)) -> AE:
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    return ae


def dataset(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(data))


def send(listener, datasets, *, ae_title=SCU_AET, contexts=None, **kwargs) -> list[int]:
    contexts = contexts or [(MG, [ExplicitVRLittleEndian])]
    assoc = scu(ae_title, contexts).associate("127.0.0.1", listener.port, ae_title=OUR_AET, **kwargs)
    assert assoc.is_established, "association was not accepted"
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def wait_for_audits(audits, count: int):
    import time

    deadline = time.monotonic() + 10
    while len(audits) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(audits) >= count, audits
    return audits


def test_it_answers_c_echo_from_a_configured_peer(listener, audits):
    assoc = scu(contexts=[(Verification, [ImplicitVRLittleEndian])]).associate(
        "127.0.0.1", listener.port, ae_title=OUR_AET
    )
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    [summary] = wait_for_audits(audits, 1)
    assert (summary.calling_ae_title, summary.called_ae_title, summary.echoes) == (SCU_AET, OUR_AET, 1)
    assert summary.outcome == "released"


@pytest.mark.parametrize(
    ("calling", "called", "bind", "diagnostic", "reason"),
    [
        ("STRANGER", OUR_AET, "127.0.0.1", 0x03, "'STRANGER' is not configured"),
        (SCU_AET, OUR_AET, "127.0.0.2", 0x03, "not for the address 127.0.0.2"),
        (SCU_AET, "SOMEONE_ELSE", "127.0.0.1", 0x07, "is not ours"),
    ],
)
def test_it_rejects_an_unknown_peer(listener, audits, ingest, caplog, calling, called, bind, diagnostic, reason):
    caplog.set_level(logging.WARNING, logger="cases.dicom.listener")
    assoc = scu(calling).associate("127.0.0.1", listener.port, ae_title=called, bind_address=(bind, 0))
    assert assoc.is_rejected and not assoc.is_established
    rejection = assoc.acceptor.primitive
    # Rejected permanent, by the service user, "calling/called AE title not recognised" (PS3.8 Table 9-21).
    assert (rejection.result, rejection.result_source, rejection.diagnostic) == (0x01, 0x01, diagnostic)
    [summary] = wait_for_audits(audits, 1)
    assert summary.outcome == "rejected" and reason in summary.rejection_reason
    assert summary.address == bind and summary.calling_ae_title == calling
    assert reason in caplog.text
    assert ingest.seen == []


def test_it_stores_mammograms_and_secondary_captures_in_the_decodable_syntaxes(listener, ingest, audits):
    sent = [
        dataset(make_dicom()),
        dataset(make_dicom(transfer_syntax=RLELossless, laterality="R")),
        dataset(make_dicom(transfer_syntax=JPEG2000Lossless, view="MLO")),
        dataset(make_dicom(sop_class=SECONDARY_CAPTURE, patient_id="Mass-Test_P_00173_RIGHT_CC", laterality="")),
    ]
    # One presentation context per transfer syntax: the acceptor picks one syntax per context.
    contexts = [(MG, [syntax]) for syntax in (ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless)]
    contexts.append((SecondaryCaptureImageStorage, [ExplicitVRLittleEndian]))
    assert send(listener, sent, contexts=contexts) == [0x0000] * 4
    assert set(ingest.stored) == {str(ds.SOPInstanceUID) for ds in sent}
    # What ingestion got is the instance as sent, in its own transfer syntax, and it was durable already.
    for ds in sent:
        received = dataset(ingest.stored[str(ds.SOPInstanceUID)])
        assert received.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
        assert (received.pixel_array == ds.pixel_array).all()
    assert all(ingest.spool_was_durable)
    assert list((listener.config.spool_dir / "incoming").glob("*.dcm")) == []  # decided, so removed
    [summary] = wait_for_audits(audits, 1)
    assert (summary.stored, summary.duplicates, summary.refused) == (4, 0, 0)


def test_an_instance_sent_twice_is_acknowledged_and_not_stored_twice(listener, ingest, audits):
    ds = dataset(make_dicom())
    assert send(listener, [ds, ds]) == [0x0000, 0x0000]
    assert send(listener, [ds]) == [0x0000]
    assert len(ingest.stored) == 1
    first, second = wait_for_audits(audits, 2)
    assert (first.stored, first.duplicates, second.stored, second.duplicates) == (1, 1, 0, 1)


def test_a_bad_instance_is_refused_with_its_reason_and_the_good_ones_are_stored(listener, ingest, audits):
    good_1, good_2 = dataset(make_dicom()), dataset(make_dicom(laterality="R"))
    multi_frame = dataset(make_dicom(frames=3))
    rle = make_dicom(transfer_syntax=RLELossless)
    damaged = dataset(replace_first_frame(rle, b"\x01\x00\x00\x00" + b"\x00" * 60 + b"\xff" * 10))
    contexts = [(MG, [ExplicitVRLittleEndian]), (MG, [RLELossless])]
    statuses = send(listener, [good_1, multi_frame, damaged, good_2], contexts=contexts)
    assert statuses == [0x0000, 0xA900, 0xC000, 0x0000]
    assert set(ingest.stored) == {str(good_1.SOPInstanceUID), str(good_2.SOPInstanceUID)}
    [summary] = wait_for_audits(audits, 1)
    assert (summary.stored, summary.refused) == (2, 2)
    assert [r["code"] for r in summary.refusals] == ["multi_frame", "corrupt_pixel_data"]
    assert "frames" in summary.refusals[0]["reason"]


def test_it_sends_the_reason_as_error_comment(listener):
    assoc = scu().associate("127.0.0.1", listener.port, ae_title=OUR_AET)
    response = assoc.send_c_store(dataset(make_dicom(frames=2)))
    assoc.release()
    assert response.Status == 0xA900
    assert "2 frames" in response.ErrorComment and len(response.ErrorComment) <= 64


def test_other_sop_classes_are_refused_at_negotiation_and_logged(listener, ingest, audits, caplog):
    caplog.set_level(logging.WARNING, logger="cases.dicom.listener")
    contexts = [
        (BreastTomosynthesisImageStorage, [ExplicitVRLittleEndian]),
        (BasicTextSRStorage, [ExplicitVRLittleEndian]),
        (MG, [ExplicitVRLittleEndian]),
    ]
    assoc = scu(contexts=contexts).associate("127.0.0.1", listener.port, ae_title=OUR_AET)
    assert assoc.is_established
    refused = {str(c.abstract_syntax): c.result for c in assoc.rejected_contexts}
    # 0x03: abstract syntax not supported (PS3.8 Table 9-18).
    assert refused == {BreastTomosynthesisImageStorage: 0x03, BasicTextSRStorage: 0x03}
    with pytest.raises(ValueError, match="No presentation context"):
        assoc.send_c_store(dataset(make_sr_dicom()))
    assert assoc.send_c_store(dataset(make_dicom())).Status == 0x0000
    assoc.release()
    [summary] = wait_for_audits(audits, 1)
    assert len(summary.refused_contexts) == 2 and summary.stored == 1
    assert "Breast Tomosynthesis Image Storage: SOP class not accepted" in caplog.text
    assert "Basic Text SR Storage: SOP class not accepted" in caplog.text


def test_a_transfer_syntax_the_decoder_cannot_read_is_refused(listener, audits):
    mpeg2 = "1.2.840.10008.1.2.4.100"
    assoc = scu(contexts=[(MG, [mpeg2])]).associate("127.0.0.1", listener.port, ae_title=OUR_AET)
    assert [c.result for c in assoc.rejected_contexts] == [0x04]  # transfer syntaxes not supported
    if assoc.is_established:
        assoc.release()
    else:
        assoc.abort()
    [summary] = wait_for_audits(audits, 1)
    assert "none of the transfer syntaxes can be decoded (MPEG2" in summary.refused_contexts[0]


def test_a_coercing_ingestion_answers_with_a_warning(listener, ingest):
    ingest.coerce = "PatientID recorded as P_00173"
    assoc = scu().associate("127.0.0.1", listener.port, ae_title=OUR_AET)
    response = assoc.send_c_store(dataset(make_dicom()))
    assoc.release()
    assert response.Status == 0xB000 and response.ErrorComment == "PatientID recorded as P_00173"


def test_a_database_outage_refuses_for_now_and_the_spooled_instance_is_recovered(tmp_path, ingest, audits):
    listener = make_listener(tmp_path, ingest, audits)
    listener.start(block=False)
    try:
        ingest.fail_with = OperationalError("connection refused")
        ds = dataset(make_dicom())
        assert send(listener, [ds]) == [0xA702]  # out of resources: the sender tries again later
    finally:
        listener.stop()
    assert ingest.stored == {}
    assert len(list((tmp_path / "spool" / "incoming").glob("*.dcm"))) == 1
    ingest.fail_with = None
    restarted = make_listener(tmp_path, ingest, audits)
    restarted.start(block=False)  # recovers the spool before serving
    restarted.stop()
    assert list(ingest.stored) == [str(ds.SOPInstanceUID)]
    assert list((tmp_path / "spool" / "incoming").glob("*")) == []
    recovery = next(a for a in audits if a.association_id == "spool-recovery")
    assert recovery.stored == 1 and ingest.seen[-1].sender.ae_title == SCU_AET


def test_a_fault_in_ingestion_is_a_processing_failure_and_the_file_is_kept(listener, ingest):
    ingest.fail_with = RuntimeError("bug")
    assert send(listener, [dataset(make_dicom())]) == [0x0110]
    assert len(list((listener.config.spool_dir / "failed").glob("*.dcm"))) == 1


def test_orthanc_sends_a_study_to_the_listener(listener, ingest, audits, orthanc):
    uploaded = [orthanc.upload(make_dicom(laterality=side, study_uid="1.2.3.4.5")) for side in "LR"]
    orthanc.add_modality("mammo", aet=OUR_AET, host="127.0.0.1", port=listener.port)
    study = uploaded[0]["ParentStudy"]
    result = orthanc.store_to_modality("mammo", [study])
    assert result["FailedInstancesCount"] == 0 and result["InstancesCount"] == 2, result
    stored = {orthanc.get(f"/instances/{u['ID']}")["MainDicomTags"]["SOPInstanceUID"] for u in uploaded}
    assert set(ingest.stored) == stored
    [summary] = wait_for_audits(audits, 1)
    assert (summary.calling_ae_title, summary.stored) == (ORTHANC_AET, 2)


def test_orthanc_is_refused_when_it_is_not_a_configured_peer(tmp_path, ingest, audits, orthanc):
    listener = make_listener(tmp_path, ingest, audits, peers=[f"{SCU_AET}@127.0.0.1"])
    listener.start(block=False)
    try:
        uploaded = orthanc.upload(make_dicom())
        orthanc.add_modality("mammo", aet=OUR_AET, host="127.0.0.1", port=listener.port)
        status, body = orthanc.request(
            "POST",
            "/modalities/mammo/store",
            body=f'{{"Resources": ["{uploaded["ID"]}"], "Synchronous": true}}'.encode(),
        )
        assert status >= 400, body
        [summary] = wait_for_audits(audits, 1)
        assert summary.outcome == "rejected" and summary.calling_ae_title == ORTHANC_AET
        assert ingest.seen == []
    finally:
        listener.stop()


def test_it_reads_its_configuration_from_the_environment(settings, monkeypatch, tmp_path):
    import environ

    from mammo_platform.settings_dicom import dicom_settings

    monkeypatch.setenv("DICOM_AE_TITLE", "SCREEN_AI")
    monkeypatch.setenv("DICOM_PORT", "104")
    monkeypatch.setenv("DICOM_ALLOWED_PEERS", "MG01@10.1.2.3, PACS@10.20.0.0/16,WS@localhost")
    for key, value in dicom_settings(environ.Env(), var_dir=tmp_path).items():
        setattr(settings, key, value)
    config = ListenerConfig.from_settings()
    assert (config.ae_title, config.port, config.spool_dir) == ("SCREEN_AI", 104, tmp_path / "dicom-spool")
    assert [str(peer) for peer in config.allowed_peers] == ["MG01@10.1.2.3", "PACS@10.20.0.0/16", "WS@localhost"]
    pacs, workstation = config.allowed_peers[1], config.allowed_peers[2]
    assert pacs.matches(ae_title="PACS", address="10.20.7.9") and not pacs.matches(ae_title="PACS", address="10.21.0.1")
    assert pacs.matches(ae_title="PACS  ", address="::ffff:10.20.0.1")  # padded title, IPv4 on a dual-stack socket
    assert workstation.matches(ae_title="WS", address="127.0.0.1")  # a host name, resolved when the peer connects
    assert not config.allowed_peers[0].matches(ae_title="mg01", address="10.1.2.3")  # AE titles are case-sensitive


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("MG01", "must be written AET@host"),
        ("MG01@10.1.2.3@x", "must be written AET@host"),
        ("A_TITLE_OF_17_CHR@10.1.2.3", "not a valid DICOM AE title"),
        ("BAD\\AET@10.1.2.3", "not a valid DICOM AE title"),
        ("@10.1.2.3", "not a valid DICOM AE title"),
        ("MG01@not a host", "is not an address, network or host name"),
    ],
)
def test_a_bad_peer_entry_stops_the_configuration_with_its_name(entry, message):
    from cases.dicom.peers import PeerConfigError

    with pytest.raises(PeerConfigError, match=message) as caught:
        peers_parse([entry])
    assert repr(entry) in str(caught.value)


def test_the_platforms_ingestion_takes_the_spool_file_as_it_is(transactional_db, tmp_path, audits):
    """With the platform's own ingestion: the stored original is the spooled file itself (a hard link, the spool
    and the store being on one file system here), never a copy made from the bytes in memory; the spool's file is
    removed once ingestion has decided."""
    import os

    from cases.dicom.ingest import dicom_instance_ingest
    from cases.models import Image
    from core import storage

    same_file = []

    def ingest(instance: ReceivedInstance) -> IngestOutcome:
        outcome = dicom_instance_ingest(instance)
        with storage.local_path(Image.objects.get(pk=outcome.image_id).original) as stored:
            same_file.append(os.path.samefile(stored, instance.spooled_path))
        return outcome

    server = make_listener(tmp_path, ingest, audits)
    server.start(block=False)
    try:
        assert send(server, [dataset(make_dicom(sop_uid="5.5.1", patient_id="W-551"))]) == [0]
    finally:
        server.stop()
    assert same_file == [True]
    assert list((tmp_path / "spool" / "incoming").iterdir()) == []
