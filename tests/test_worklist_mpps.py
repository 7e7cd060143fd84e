"""The modality's side of the screening episode against the real listener process (`manage.py dicom_listener`):
dcmtk's findscu reads the Modality Worklist, and a pynetdicom modality emulator runs a whole exam (C-FIND, MPPS
N-CREATE, C-STORE of four views with the worklist's accession number, N-SET COMPLETED or DISCONTINUED); the
appointment moves through its statuses and the images attach to it; an unmatched accession is held; a peer that is
not allowed is refused."""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO

import pydicom
import pytest
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (
    DigitalMammographyXRayImageStorageForPresentation,
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
)

from tests.dicom_network import LISTENER_AET, SCU_AET, ListenerProcess, database_env
from tests.screening_factory import FOUR_VIEWS, at, book, mammogram

pytestmark = pytest.mark.django_db(transaction=True)
FINDSCU = shutil.which("findscu")


@pytest.fixture
def listener(settings, tmp_path):
    env = {**database_env(settings), "SCREENING_HOLD_UNMATCHED": "true", "TIME_ZONE": settings.TIME_ZONE}
    process = ListenerProcess(env=env, workdir=tmp_path, peers=[f"{SCU_AET}@127.0.0.1"])
    process.start()
    yield process
    process.stop()


def today() -> str:
    return timezone.localdate().strftime("%Y%m%d")


def findscu(listener, out, *keys: str, aet: str = SCU_AET) -> tuple[subprocess.CompletedProcess, list[Dataset]]:
    """findscu with these keys; its answers, which it writes as rsp0001.dcm... in the new folder `out`."""
    out.mkdir()
    command = [FINDSCU, "-W", "-aet", aet, "-aec", LISTENER_AET, "-X", "-od", str(out), "-to", "30"]
    for key in keys:
        command += ["-k", key]
    done = subprocess.run([*command, "127.0.0.1", str(listener.port)], capture_output=True, text=True, timeout=60)
    return done, [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def step(key: str, value: str = "") -> str:
    return f"ScheduledProcedureStepSequence[0].{key}" + (f"={value}" if value else "")


@pytest.mark.skipif(FINDSCU is None, reason="dcmtk's findscu is not installed (test.sh installs Debian's dcmtk)")
def test_findscu_reads_the_technologists_appointment_on_the_worklist(listener, technologist, tmp_path):
    appointment = book(technologist, starts_at=at(9, 30))
    book(technologist, patient_id="OTHER-ROOM", family_name="Other", station_ae_title="MG_ROOM_2", starts_at=at(10))
    book(technologist, patient_id="TOMORROW", family_name="Later", starts_at=at(9, days=1))
    keys = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyInstanceUID",
            "RequestedProcedureID", "RequestedProcedureDescription", step("Modality", "MG"),
            step("ScheduledStationAETitle", SCU_AET), step("ScheduledProcedureStepStartDate", today()),
            step("ScheduledProcedureStepStartTime"), step("ScheduledProcedureStepID")]  # fmt: skip
    done, answers = findscu(listener, tmp_path / "today", *keys)
    assert done.returncode == 0, done.stderr + listener.log_tail()
    assert len(answers) == 1, done.stdout + done.stderr + listener.log_tail()
    [item] = answers
    assert (str(item.PatientName), item.PatientID, item.PatientBirthDate, item.PatientSex) == (
        "Jones^Ada", "9434765919", "19680402", "F")  # fmt: skip
    assert item.AccessionNumber == appointment.accession_number
    assert item.StudyInstanceUID == appointment.study_instance_uid
    assert item.RequestedProcedureID == appointment.accession_number
    assert item.RequestedProcedureDescription == "Screening mammography, bilateral"
    sps = item.ScheduledProcedureStepSequence[0]
    assert (sps.Modality, sps.ScheduledStationAETitle, sps.ScheduledProcedureStepStartDate,
            sps.ScheduledProcedureStepStartTime) == ("MG", SCU_AET, today(), "093000")  # fmt: skip
    assert "ScheduledProcedureStepLocation" not in sps  # only the keys asked for come back

    # Wildcards and ranges: a name pattern over two days finds the woman of tomorrow too, in time order.
    done, answers = findscu(listener, tmp_path / "two-days", "PatientName=*", "AccessionNumber",
                            step("Modality", "MG"),
                            step("ScheduledProcedureStepStartDate", f"{today()}-{at(9, days=1):%Y%m%d}"))  # fmt: skip
    assert done.returncode == 0
    assert [str(a.PatientName) for a in answers] == ["Jones^Ada", "Other^Ada", "Later^Ada"]
    done, answers = findscu(listener, tmp_path / "ct", "PatientID=9434*", "AccessionNumber", step("Modality", "CT"))
    assert done.returncode == 0 and answers == []
    done, answers = findscu(listener, tmp_path / "by-id", "PatientID=9434*", "PatientName")
    assert [str(a.PatientName) for a in answers] == ["Jones^Ada"]

    # A peer that is not allowed is refused the worklist, as it would be C-STORE.
    done, answers = findscu(listener, tmp_path / "stranger", "PatientName", aet="STRANGER")
    assert done.returncode != 0 and answers == [] and "Association Rejected" in done.stdout + done.stderr
    assert "'STRANGER' is not configured" in listener.log_tail()


def modality() -> AE:
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    ae.add_requested_context(ModalityWorklistInformationFind)
    ae.add_requested_context(ModalityPerformedProcedureStep)
    ae.add_requested_context(DigitalMammographyXRayImageStorageForPresentation, ExplicitVRLittleEndian)
    return ae


def worklist_query() -> Dataset:
    query = Dataset()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                    "StudyInstanceUID", "RequestedProcedureID"):  # fmt: skip
        setattr(query, keyword, "")
    sps = Dataset()
    sps.Modality, sps.ScheduledStationAETitle, sps.ScheduledProcedureStepStartDate = "MG", SCU_AET, today()
    sps.ScheduledProcedureStepID = sps.ScheduledProcedureStepStatus = ""
    query.ScheduledProcedureStepSequence = [sps]
    return query


def n_create(item: Dataset) -> Dataset:
    attributes = Dataset()
    attributes.PerformedProcedureStepStatus = "IN PROGRESS"
    scheduled = Dataset()
    scheduled.AccessionNumber = item.AccessionNumber
    scheduled.StudyInstanceUID = item.StudyInstanceUID
    scheduled.RequestedProcedureID = item.RequestedProcedureID
    scheduled.ScheduledProcedureStepID = item.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID
    attributes.ScheduledStepAttributesSequence = [scheduled]
    attributes.PatientName, attributes.PatientID = item.PatientName, item.PatientID
    attributes.PerformedStationAETitle = SCU_AET
    attributes.PerformedProcedureStepID = "PPS-1"
    attributes.PerformedProcedureStepStartDate, attributes.PerformedProcedureStepStartTime = today(), "093500"
    attributes.Modality = "MG"
    attributes.PerformedSeriesSequence = []
    return attributes


def n_set(status: str, images: list[Dataset], *, reason: str = "") -> Dataset:
    changes = Dataset()
    changes.PerformedProcedureStepStatus = status
    changes.PerformedProcedureStepEndDate, changes.PerformedProcedureStepEndTime = today(), "094500"
    series = Dataset()
    series.SeriesInstanceUID = images[0].SeriesInstanceUID if images else generate_uid()
    series.Modality = "MG"
    series.ReferencedImageSequence = []
    for image in images:
        reference = Dataset()
        reference.ReferencedSOPClassUID = image.SOPClassUID
        reference.ReferencedSOPInstanceUID = image.SOPInstanceUID
        series.ReferencedImageSequence.append(reference)
    changes.PerformedSeriesSequence = [series]
    if reason:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "110514", "DCM", reason
        changes.PerformedProcedureStepDiscontinuationReasonCodeSequence = [code]
    return changes


def views_of(item: Dataset, views=FOUR_VIEWS, *, accession: str | None = None) -> list[Dataset]:
    """The images the modality takes, with the worklist item's identity (and Study Instance UID)."""
    return [
        pydicom.dcmread(BytesIO(mammogram(accession=item.AccessionNumber if accession is None else accession,
                                          patient_id=item.PatientID, side=side, view=view,
                                          study_uid=item.StudyInstanceUID)))
        for side, view in views
    ]  # fmt: skip


def test_the_modality_emulator_takes_an_exam_screened_by_mpps_with_images_attached(listener, technologist):
    from audit.models import AuditEvent
    from cases.models import Appointment, Image, PerformedProcedureStep
    from cases.screening.appointments import appointment_check_in

    appointment = book(technologist)
    appointment_check_in(appointment_id=appointment.pk, user=technologist, identity_confirmed=True)
    assoc = modality().associate("127.0.0.1", listener.port, ae_title=LISTENER_AET)
    assert assoc.is_established, listener.log_tail()
    try:
        answers = assoc.send_c_find(worklist_query(), ModalityWorklistInformationFind)
        found = [(status.Status, item) for status, item in answers]
        assert [s for s, _ in found] == [0xFF00, 0x0000]
        item = found[0][1]
        assert item.AccessionNumber == appointment.accession_number
        assert item.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "ARRIVED"  # checked in

        step_uid = generate_uid()
        status, answer = assoc.send_n_create(n_create(item), ModalityPerformedProcedureStep, step_uid)
        assert status.Status == 0x0000, listener.log_tail()
        assert Appointment.objects.get().status == Appointment.Status.IN_PROGRESS
        status, _ = assoc.send_n_create(n_create(item), ModalityPerformedProcedureStep, step_uid)
        assert status.Status == 0x0111  # the same step twice: duplicate SOP instance

        images = views_of(item)
        assert [int(assoc.send_c_store(ds).Status) for ds in images] == [0x0000] * 4
        status, _ = assoc.send_n_set(n_set("COMPLETED", images), ModalityPerformedProcedureStep, step_uid)
        assert status.Status == 0x0000, listener.log_tail()
        status, _ = assoc.send_n_set(n_set("DISCONTINUED", images), ModalityPerformedProcedureStep, step_uid)
        assert status.Status == 0x0110 and "may no longer be updated" in status.ErrorComment
        status, _ = assoc.send_n_set(n_set("COMPLETED", images), ModalityPerformedProcedureStep, generate_uid())
        assert status.Status == 0x0112  # no such step
    finally:
        assoc.release()

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.SCREENED
    rows = list(appointment.status_changes.values_list("to_status", "source"))
    assert rows == [("scheduled", "person"), ("checked_in", "person"), ("in_progress", "mpps"), ("screened", "mpps")]
    [study] = appointment.studies.all()
    assert study.images.count() == 4 and study.accession_number == appointment.accession_number
    assert set(Image.objects.values_list("study_id", flat=True)) == {study.pk}
    assert PerformedProcedureStep.objects.get().status == "COMPLETED"
    assert AuditEvent.objects.filter(action="mpps.received").count() == 2
    association = AuditEvent.objects.filter(action="dicom.association").order_by("-id").first()
    assert association.details["stored"] == 4
    assert association.details["worklist_queries"][0]["answered"] == [appointment.accession_number]
    assert [m["status"] for m in association.details["mpps"]] == ["0x0000", "0x0111", "0x0000", "0x0110", "0x0112"]


def test_mpps_completed_before_the_images_waits_for_them_and_discontinued_is_partial(listener, technologist):
    from cases.models import Appointment, PerformedProcedureStep

    first = book(technologist)
    second = book(technologist, patient_id="9999999999", family_name="Brown", starts_at=at(10))
    assoc = modality().associate("127.0.0.1", listener.port, ae_title=LISTENER_AET)
    assert assoc.is_established, listener.log_tail()
    try:
        items = {i.AccessionNumber: i for s, i in assoc.send_c_find(worklist_query(), ModalityWorklistInformationFind)
                 if s.Status == 0xFF00}  # fmt: skip
        # The first woman: COMPLETED references four images the modality sends afterwards.
        item = items[first.accession_number]
        images, step_uid = views_of(item), generate_uid()
        assert assoc.send_n_create(n_create(item), ModalityPerformedProcedureStep, step_uid)[0].Status == 0
        assert assoc.send_n_set(n_set("COMPLETED", images), ModalityPerformedProcedureStep, step_uid)[0].Status == 0
        waiting = PerformedProcedureStep.objects.get(sop_instance_uid=step_uid)
        assert waiting.outcome_pending and waiting.outcome_note == "Waiting for 4 of the 4 images"
        assert Appointment.objects.get(pk=first.pk).status == Appointment.Status.IN_PROGRESS
        assert [int(assoc.send_c_store(ds).Status) for ds in images] == [0] * 4
        assert Appointment.objects.get(pk=first.pk).status == Appointment.Status.SCREENED

        # The second woman: two views, then she asks to stop.
        item = items[second.accession_number]
        images, step_uid = views_of(item, FOUR_VIEWS[:2]), generate_uid()
        assert assoc.send_n_create(n_create(item), ModalityPerformedProcedureStep, step_uid)[0].Status == 0
        assert [int(assoc.send_c_store(ds).Status) for ds in images] == [0] * 2
        changes = n_set("DISCONTINUED", images, reason="Patient refused to continue procedure")
        assert assoc.send_n_set(changes, ModalityPerformedProcedureStep, step_uid)[0].Status == 0
    finally:
        assoc.release()
    second.refresh_from_db()
    assert second.status == Appointment.Status.PARTIALLY_SCREENED
    assert second.status_changes.last().reason == "Patient refused to continue procedure"


def test_an_unmatched_accession_is_held_and_a_stranger_is_refused(listener, technologist):
    from cases.models import Appointment, Study

    appointment = book(technologist)
    assoc = modality().associate("127.0.0.1", listener.port, ae_title=LISTENER_AET)
    assert assoc.is_established, listener.log_tail()
    try:
        [(status, item), _] = list(assoc.send_c_find(worklist_query(), ModalityWorklistInformationFind))
        typo = views_of(item, FOUR_VIEWS[:1], accession="MA0000000X")
        assert int(assoc.send_c_store(typo[0]).Status) == 0x0000  # stored durably: acknowledged, and held
    finally:
        assoc.release()
    [held] = Study.objects.all()
    assert held.status == Study.Status.HELD and held.appointment_id is None
    assert held.held_reason == "Accession number MA0000000X matches no appointment."
    assert Appointment.objects.get(pk=appointment.pk).status == Appointment.Status.SCHEDULED

    stranger = AE(ae_title="STRANGER")
    stranger.add_requested_context(ModalityWorklistInformationFind)
    stranger.add_requested_context(ModalityPerformedProcedureStep)
    refused = stranger.associate("127.0.0.1", listener.port, ae_title=LISTENER_AET)
    assert refused.is_rejected and not refused.is_established
