"""Arriving images and appointments (cases/studies/placement.py, cases/screening/matching.py): linked by accession
number, held when none matches (at a site that holds them), never attached by name; a person matches or releases
held images; the grouping of received instances with appointments and held studies."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from cases.dicom.ingest import dicom_file_ingest, dicom_service_user
from cases.models import Appointment, Study
from cases.reading import claims
from cases.reading.worklist import Queue, worklist_counts
from cases.screening.appointments import appointment_check_in
from cases.screening.matching import held_study_match, held_study_release
from cases.studies.ingestion import IncomingFile, study_upload
from cases.studies.services import study_status_refresh
from core.errors import ApplicationError
from inference.models import InferenceJob
from tests.conftest import api_client_for
from tests.screening_factory import book, mammogram

pytestmark = pytest.mark.django_db


@pytest.fixture
def hold(settings):
    settings.SCREENING_HOLD_UNMATCHED = True


def receive(data: bytes, tmp_path, name: str = "x.dcm"):
    """As the listener and STOW-RS hand an instance to ingestion: a borrowed file on disk."""
    import pydicom

    path = tmp_path / name
    path.write_bytes(data)
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    return dicom_file_ingest(incoming=IncomingFile.borrowed_file(name, path), sop_instance_uid=uid,
                             user=dicom_service_user())  # fmt: skip


def test_received_views_join_their_appointment_by_accession_whatever_their_study_uid(technologist, tmp_path):
    appointment = book(technologist)
    appointment_check_in(appointment_id=appointment.pk, user=technologist, identity_confirmed=True)
    outcomes = [
        receive(mammogram(accession=appointment.accession_number, side=side, view=view, study_uid=f"1.2.3.{i}"),
                tmp_path, f"{i}.dcm")
        for i, (side, view) in enumerate((("R", "CC"), ("L", "CC"), ("R", "MLO")))
    ]  # fmt: skip
    assert {o.status for o in outcomes} == {"stored"} and len({o.study_id for o in outcomes}) == 1
    study = Study.objects.get()
    assert (study.appointment_id, study.episode_id) == (appointment.pk, appointment.episode_id)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.IN_PROGRESS  # the first image: she is being imaged
    change = appointment.status_changes.last()
    assert (change.source, change.changed_by, change.reason) == ("images", None, "Images received")


def test_without_holding_an_unmatched_image_is_a_study_of_no_appointment(technologist, tmp_path):
    appointment = book(technologist)
    outcome = receive(mammogram(accession="NOT-OURS"), tmp_path)
    study = Study.objects.get(pk=outcome.study_id)
    assert study.appointment_id is None and study.status != Study.Status.HELD
    # An image of the appointment's DICOM study UID but without its accession does not join it either.
    linked = receive(mammogram(accession=appointment.accession_number, study_uid="1.2.9"), tmp_path, "a.dcm")
    stray = receive(mammogram(accession="", study_uid="1.2.9", side="L"), tmp_path, "b.dcm")
    assert linked.study_id != stray.study_id
    assert Study.objects.get(pk=stray.study_id).appointment_id is None


def test_held_images_are_kept_from_readers_and_grouped_by_their_dicom_study(technologist, radiologist, tmp_path,
                                                                            hold):  # fmt: skip
    first = receive(mammogram(accession="TYPO-1", study_uid="1.2.5", side="R"), tmp_path, "1.dcm")
    second = receive(mammogram(accession="TYPO-1", study_uid="1.2.5", side="L"), tmp_path, "2.dcm")
    assert first.status == second.status == "stored" and first.study_id == second.study_id
    held = Study.objects.get()
    assert held.status == Study.Status.HELD and held.appointment_id is None
    assert held.held_reason == "Accession number TYPO-1 matches no appointment."
    # Its analyses may end: it stays held, out of every reading queue.
    InferenceJob.objects.filter(image__study=held).update(status=InferenceJob.Status.SUCCEEDED)
    assert study_status_refresh(study_id=held.pk).status == Study.Status.HELD
    assert worklist_counts(user=radiologist)[Queue.AWAITING_FIRST] == 0
    with pytest.raises(ApplicationError):
        claims.read_claim(study_id=held.pk, user=radiologist)
    assert AuditEvent.objects.filter(action="images.held", study_id=held.pk).count() == 1
    no_accession = receive(mammogram(accession="", study_uid="1.2.6"), tmp_path, "3.dcm")
    assert Study.objects.get(pk=no_accession.study_id).held_reason == "The images carry no accession number."


def test_an_accession_of_another_womans_appointment_is_held_not_attached(technologist, tmp_path, hold):
    appointment = book(technologist)
    outcome = receive(mammogram(accession=appointment.accession_number, patient_id="SOMEONE-ELSE"), tmp_path)
    study = Study.objects.get(pk=outcome.study_id)
    assert study.status == Study.Status.HELD and study.appointment_id is None
    assert "is an appointment of patient 9434765919, but the images are of SOMEONE-ELSE" in study.held_reason
    # ...and a person cannot attach it to her either, whatever the name says.
    with pytest.raises(ApplicationError, match="only attached to the same woman"):
        held_study_match(study_id=study.pk, appointment_id=appointment.pk, user=technologist)


def test_a_person_attaches_held_images_to_the_same_womans_appointment(client, technologist, tmp_path, hold):
    appointment = book(technologist)
    outcome = receive(mammogram(accession="", study_uid="1.2.7"), tmp_path)
    client.force_login(technologist)
    page = client.get("/clinic/held/").content.decode()
    assert f"Study #{outcome.study_id}" in page and appointment.accession_number in page
    refused = client.post(f"/clinic/held/{outcome.study_id}/match/", {})
    assert refused.status_code == 400 and "Choose the appointment these images were taken in." in (
        refused.content.decode()
    )
    done = client.post(f"/clinic/held/{outcome.study_id}/match/", {f"s{outcome.study_id}-appointment": appointment.pk})
    assert done.status_code == 302
    study = Study.objects.get(pk=outcome.study_id)
    assert (study.appointment_id, study.accession_number, study.held_reason) == (
        appointment.pk, appointment.accession_number, "")  # fmt: skip
    assert study.status in (Study.Status.UPLOADED, Study.Status.PROCESSING, Study.Status.AWAITING_READS)
    event = AuditEvent.objects.get(action="images.matched")
    assert event.actor_id == technologist.pk and event.details["accession_number_sent"] == ""
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.IN_PROGRESS
    # The next image of that DICOM study carries the right accession now: it joins the same study.
    late = receive(mammogram(accession=appointment.accession_number, study_uid="1.2.7", side="L", view="MLO"),
                   tmp_path, "late.dcm")  # fmt: skip
    assert late.study_id == study.pk
    assert "No images are held." in client.get("/clinic/held/").content.decode()


def test_held_images_may_be_released_for_reading_without_an_appointment(technologist, lead, tmp_path, hold):
    outcome = receive(mammogram(accession="PRIOR-ELSEWHERE"), tmp_path)
    api = api_client_for(lead)
    [listed] = api.get("/api/held-studies/").json()
    assert listed["id"] == outcome.study_id and listed["candidates"] == []
    refused = api.post(f"/api/held-studies/{outcome.study_id}/release/", {"reason": ""}, format="json")
    assert refused.status_code == 400 and "Say why" in refused.json()["detail"]
    done = api.post(f"/api/held-studies/{outcome.study_id}/release/", {"reason": "Prior from Leeds"}, format="json")
    assert done.status_code == 200 and done.json()["status"] != "held"
    assert AuditEvent.objects.get(action="images.released").details["reason"] == "Prior from Leeds"
    assert api.post(f"/api/held-studies/{outcome.study_id}/release/", {"reason": "again"},
                    format="json").status_code == 404  # fmt: skip
    with pytest.raises(ApplicationError, match="no longer held"):
        held_study_release(study_id=outcome.study_id, user=lead, reason="again")


def test_an_upload_with_an_appointments_accession_joins_it_and_one_without_is_held(technologist, tmp_path, hold):
    appointment = book(technologist)
    result = study_upload(user=technologist, files=[IncomingFile.from_bytes("a.dcm", mammogram(accession=""))],
                          accession_number=appointment.accession_number)  # fmt: skip
    assert result.study.appointment_id == appointment.pk
    held = study_upload(user=technologist, files=[IncomingFile.from_bytes("b.dcm", mammogram(accession="X",
                                                                                              side="L"))])  # fmt: skip
    assert held.study.status == Study.Status.HELD and held.study.pk != result.study.pk


@pytest.mark.parametrize("role_fixture", ["radiologist", "auditor", "admin_user"])
def test_held_images_are_matched_only_by_those_who_may(client, tmp_path, hold, technologist, role_fixture, request):
    outcome = receive(mammogram(accession="X"), tmp_path)
    appointment = book(technologist)
    client.force_login(request.getfixturevalue(role_fixture))
    response = client.post(f"/clinic/held/{outcome.study_id}/match/", {f"s{outcome.study_id}-appointment":
                                                                       appointment.pk})  # fmt: skip
    assert response.status_code == 403
    assert Study.objects.get(pk=outcome.study_id).status == Study.Status.HELD


def test_the_upload_page_says_when_images_are_held(client, technologist, hold):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(technologist)
    response = client.post("/studies/new/", {"files": [SimpleUploadedFile("a.dcm", mammogram(accession="ZZ9"))]},
                           follow=True)  # fmt: skip
    text = response.content.decode()
    assert "held for matching to an appointment: Accession number ZZ9 matches no appointment." in text
    assert "Held: not matched to an appointment" in text  # the study's status


def test_a_held_studys_ai_is_kept_from_those_who_may_read_it_once_matched(radiologist, tmp_path, hold, settings):
    from cases.ai_visibility import COULD_READ_UNAIDED, ai_access

    settings.READERS_SEE_AI = False  # reads are given without the AI: a look before claiming would aid the read
    outcome = receive(mammogram(accession="X"), tmp_path)
    assert ai_access(user=radiologist, study=Study.objects.get(pk=outcome.study_id)) == COULD_READ_UNAIDED
