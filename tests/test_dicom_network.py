"""The DICOM network for real: the `dicom_listener` process on the test database, the platform's own ingestion,
a real Celery worker with a small real model, and a real Orthanc PACS on loopback."""

from __future__ import annotations

import threading
import time
from io import BytesIO

import pydicom
import pytest
from pydicom.uid import RLELossless

from tests.conftest import wait_for
from tests.dicom_factory import SECONDARY_CAPTURE, make_dicom, patch_dicom
from tests.dicom_network import SCU_AET, ListenerProcess, database_env, scu
from tests.orthanc import ORTHANC_AET, orthanc_running

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def orthanc(tmp_path_factory):
    with orthanc_running(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def listener(settings, tmp_path):
    process = ListenerProcess(
        env=database_env(settings), workdir=tmp_path, peers=[f"{SCU_AET}@127.0.0.1", f"{ORTHANC_AET}@127.0.0.1"]
    )
    process.start()
    yield process
    process.stop()


def dataset(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(data))


def send(listener, datasets) -> list[int]:
    assoc = scu().associate("127.0.0.1", listener.port, ae_title="MAMMO_AI")
    assert assoc.is_established, listener.log_tail()
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def four_views(*, study_uid: str, patient_id: str = "W-1001") -> list[bytes]:
    return [
        make_dicom(laterality=side, view=view, study_uid=study_uid, patient_id=patient_id)
        for side in "RL"
        for view in ("CC", "MLO")
    ]


def test_orthanc_sends_a_study_and_the_platform_analyses_it(celery_worker, active_model, orthanc, settings, tmp_path):
    from cases.models import Image, Study
    from inference.models import InferenceJob

    process = ListenerProcess(env=celery_worker.env, workdir=tmp_path, peers=[f"{ORTHANC_AET}@127.0.0.1"])
    process.start()
    try:
        uploaded = [orthanc.upload(data) for data in four_views(study_uid="1.2.826.0.1.3680043.8.498.77")]
        orthanc.add_modality("mammo", aet="MAMMO_AI", host="127.0.0.1", port=process.port)
        result = orthanc.store_to_modality("mammo", [uploaded[0]["ParentStudy"]])
        assert (result["InstancesCount"], result["FailedInstancesCount"]) == (4, 0), process.log_tail()
        [study] = Study.objects.all()
        assert study.study_instance_uid == "1.2.826.0.1.3680043.8.498.77"
        assert study.patient.patient_id == "W-1001" and study.images.count() == 4
        sent_uids = {orthanc.get(f"/instances/{u['ID']}")["MainDicomTags"]["SOPInstanceUID"] for u in uploaded}
        assert set(study.images.values_list("sop_instance_uid", flat=True)) == sent_uids

        def analysed():
            return InferenceJob.objects.filter(status=InferenceJob.Status.SUCCEEDED).count() == 4

        wait_for(analysed, timeout=240, worker=celery_worker)
        assert {i.predictions.count() for i in Image.objects.all()} == {1}
    finally:
        process.stop()


def test_cbis_ddsm_views_are_grouped_by_woman_and_exam(listener):
    from audit.models import AuditEvent
    from cases.models import Study

    def cbis(patient_id: str) -> pydicom.Dataset:
        return dataset(make_dicom(sop_class=SECONDARY_CAPTURE, laterality="", view="", patient_id=patient_id))

    views = [cbis(f"Mass-Test_P_00173_{side}") for side in ("LEFT_CC", "LEFT_MLO", "RIGHT_CC")]
    assert len({ds.StudyInstanceUID for ds in views}) == 3  # each view its own DICOM study, as in CBIS-DDSM
    # 0xB000: stored, and the platform records the woman as P_00173, not the view-naming identifier.
    assert send(listener, views) == [0xB000] * 3
    assert send(listener, [cbis("Calc-Test_P_00173_LEFT_CC")]) == [0xB000]
    mass, calc = Study.objects.order_by("created_at")
    assert mass.patient.patient_id == calc.patient.patient_id == "P_00173"
    assert sorted(mass.images.values_list("laterality", "view")) == [("L", "CC"), ("L", "MLO"), ("R", "CC")]
    assert calc.images.count() == 1
    event = AuditEvent.objects.filter(action="dicom.association").order_by("id").first()
    assert event.details["calling_ae_title"] == SCU_AET and event.details["stored"] == 3


def test_an_instance_sent_twice_is_acknowledged_and_stored_once(listener):
    from cases.models import Image

    data = make_dicom(study_uid="1.2.3.99")
    first = dataset(data)
    again = dataset(make_dicom(study_uid="1.2.3.99", sop_uid=str(first.SOPInstanceUID), transfer_syntax=RLELossless))
    assert send(listener, [first]) == [0x0000]
    assert send(listener, [first, again]) == [0x0000, 0x0000]  # same bytes, then re-encoded: same instance
    assert Image.objects.count() == 1


def test_a_bad_instance_does_not_cost_the_good_ones(listener):
    from audit.models import AuditEvent
    from cases.models import Image

    good = [dataset(make_dicom(laterality=side, study_uid="1.2.3.100")) for side in "LR"]
    chest = patch_dicom(make_dicom(sop_class=SECONDARY_CAPTURE, modality="OT", study_uid="1.2.3.100"),
                        BodyPartExamined="CHEST")  # fmt: skip
    not_a_mammogram = dataset(chest)
    no_side = dataset(make_dicom(laterality="", patient_id="W-2", study_uid="1.2.3.100"))
    statuses = send(listener, [good[0], not_a_mammogram, no_side, good[1]])
    assert statuses == [0x0000, 0xA900, 0xC001, 0x0000]
    assert set(Image.objects.values_list("sop_instance_uid", flat=True)) == {str(ds.SOPInstanceUID) for ds in good}
    event = wait_for(lambda: AuditEvent.objects.filter(action="dicom.association").first())
    assert (event.details["stored"], event.details["refused"]) == (2, 2)
    assert [r["code"] for r in event.details["refusals"]] == ["not_a_mammogram", "laterality_missing"]


def test_refusals_are_worded_for_a_modality_and_a_ct_secondary_capture_is_refused(listener):
    """A modality or PACS is told which tag is missing, never the upload page's advice; a Secondary Capture from CT
    is no mammogram whatever BodyPartExamined says (it was scored before)."""
    from cases.models import Image

    no_side = dataset(make_dicom(laterality="", study_uid="1.2.3.101"))
    no_view = dataset(make_dicom(view="", study_uid="1.2.3.101"))
    ct_breast = dataset(patch_dicom(make_dicom(sop_class=SECONDARY_CAPTURE, modality="CT", study_uid="1.2.3.101"),
                                    BodyPartExamined="BREAST"))  # fmt: skip
    assoc = scu().associate("127.0.0.1", listener.port, ae_title="MAMMO_AI")
    try:
        responses = [assoc.send_c_store(ds) for ds in (no_side, no_view, ct_breast)]
    finally:
        assoc.release()
    assert [int(r.Status) for r in responses] == [0xC001, 0xC001, 0xA900]
    assert responses[0].ErrorComment == "Breast side unknown: set ImageLaterality (0020,0062) to L or R"
    assert responses[1].ErrorComment == "View unknown: set ViewPosition (0018,5101) to CC or MLO"
    assert "CT imaging" in responses[2].ErrorComment
    for response in responses:
        assert "form" not in response.ErrorComment and ".png" not in response.ErrorComment
    assert not Image.objects.exists()


def test_a_killed_listener_loses_nothing_it_acknowledged(settings, tmp_path):
    """SIGKILL mid-association: what was acknowledged is stored; what was received but not yet acknowledged is
    ingested from the spool when the listener starts again; nothing is stored twice when the sender resends."""
    from cases.models import Image

    process = ListenerProcess(env=database_env(settings), workdir=tmp_path, peers=[f"{SCU_AET}@127.0.0.1"])
    process.start()
    acknowledged = [dataset(make_dicom(laterality=side, study_uid="1.2.3.200")) for side in "LR"]
    in_flight = dataset(make_dicom(view="MLO", study_uid="1.2.3.200", rows=1536, columns=1152))
    assoc = scu().associate("127.0.0.1", process.port, ae_title="MAMMO_AI")
    assert [assoc.send_c_store(ds).Status for ds in acknowledged] == [0x0000, 0x0000]
    answers = []
    sender = threading.Thread(target=lambda: answers.append(assoc.send_c_store(in_flight)))
    sender.start()
    # Kill as soon as the third instance is durable in the spool, before the listener has answered it.
    deadline = time.monotonic() + 30
    while not list((process.spool / "incoming").glob("*.dcm")) and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    sender.join(timeout=60)
    assert answers and not answers[0]  # no status came back: the sender must consider it not stored
    assert set(Image.objects.values_list("sop_instance_uid", flat=True)) >= {
        str(ds.SOPInstanceUID) for ds in acknowledged
    }
    process.start()  # recovers the spool before it serves
    assert list((process.spool / "incoming").glob("*.dcm")) == []
    expected = {str(ds.SOPInstanceUID) for ds in [*acknowledged, in_flight]}
    assert set(Image.objects.values_list("sop_instance_uid", flat=True)) == expected
    assert send(process, [in_flight]) == [0x0000]  # the sender retries what it never got an answer for
    assert Image.objects.count() == 3
    process.stop()


@pytest.fixture
def pacs_down_then_up(tmp_path_factory, monkeypatch):
    """An Orthanc that is configured as the results destination but not started yet (the PACS is down)."""
    from tests.orthanc import Orthanc

    server = Orthanc(workdir=tmp_path_factory.mktemp("pacs"))
    monkeypatch.setenv("DICOM_DESTINATION_AE_TITLE", server.aet)
    monkeypatch.setenv("DICOM_DESTINATION_HOST", "127.0.0.1")
    monkeypatch.setenv("DICOM_DESTINATION_PORT", str(server.dicom_port))
    monkeypatch.setenv("DICOM_DELIVERY_BACKOFF_SECONDS", "1")
    monkeypatch.setenv("DICOM_DELIVERY_BACKOFF_MAX_SECONDS", "2")
    yield server
    server.stop()


def test_results_reach_the_pacs_after_it_comes_back(pacs_down_then_up, celery_worker, active_model, tmp_path):
    """Images in by C-STORE, analysed; the result objects go to a PACS that is down at first: delivery waits
    (pending, attempts counted and audited), then arrives once the PACS is up, referencing the right images."""
    import highdicom as hd

    from audit.models import AuditEvent
    from cases.models import DicomDelivery, DicomResultObject

    pacs = pacs_down_then_up
    process = ListenerProcess(env=celery_worker.env, workdir=tmp_path, peers=[f"{SCU_AET}@127.0.0.1"])
    process.start()
    try:
        sent = [dataset(d) for d in four_views(study_uid="1.2.826.0.1.3680043.8.498.78")[:2]]
        assert send(process, sent) == [0x0000, 0x0000]

        def results_made():
            return DicomResultObject.objects.count() == 6  # 2 image SRs, 2 overlays, the study SR and CAD SR

        wait_for(results_made, timeout=240, worker=celery_worker)
        wait_for(lambda: DicomDelivery.objects.filter(attempts__gte=2).count() == 6, timeout=60, worker=celery_worker)
        assert not DicomDelivery.objects.filter(status=DicomDelivery.Status.DELIVERED).exists()
        assert "No association" in DicomDelivery.objects.first().last_error
        assert AuditEvent.objects.filter(action="dicom.result_delivery_attempt_failed").exists()

        pacs.start()
        pacs.add_modality("platform", aet="MAMMO_AI", host="127.0.0.1", port=process.port)

        def delivered():
            return DicomDelivery.objects.filter(status=DicomDelivery.Status.DELIVERED).count() == 6

        wait_for(delivered, timeout=120, worker=celery_worker)
        sources = {str(ds.SOPInstanceUID) for ds in sent}
        for obj in DicomResultObject.objects.all():
            [found] = pacs.find_instances(SOPInstanceUID=obj.sop_instance_uid)
            archived = pydicom.dcmread(BytesIO(pacs.instance_file(found["ID"])))
            assert archived.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.78"
            if obj.kind == DicomResultObject.Kind.OVERLAY_SC:
                assert archived.SourceImageSequence[0].ReferencedSOPInstanceUID == obj.image.sop_instance_uid
                continue
            if obj.kind == DicomResultObject.Kind.CAD_SR:
                assert archived.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.50"
                continue
            groups = hd.sr.ComprehensiveSR.from_dataset(archived).content.get_planar_roi_measurement_groups()
            referenced = {g.roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID for g in groups}
            expected = sources if obj.kind == DicomResultObject.Kind.STUDY_SR else {obj.image.sop_instance_uid}
            assert referenced == expected
        assert AuditEvent.objects.filter(action="dicom.result_delivered").count() == 6
    finally:
        process.stop()
