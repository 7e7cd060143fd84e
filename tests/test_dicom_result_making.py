"""Which AI result objects are made, when, and what is shown when one cannot be made (cases/dicom/results.py), run
in this process on the real database: real analyses with the tiny model, real objects checked by dciodvfy.

- each analysed DICOM image gets its objects, each on its own: one that cannot be made is recorded as failed with
  the reason, shown on the study page, the operations page, the API and /healthz, and a retry makes it;
- a study's report (TID 1500 study SR and Mammography CAD SR) waits for the study to be stable and settled; a
  later image makes version 2, which references version 1; the same content never makes another version.
"""

from __future__ import annotations

from io import BytesIO

import pydicom
import pytest

from cases.dicom.results import dicom_image_results_build, dicom_result_retry, dicom_study_results_build
from cases.models import DicomResultObject, Image
from cases.studies.ingestion import IncomingFile, study_upload
from core import storage
from core.models import OutboxMessage
from inference.models import InferenceJob, Prediction
from inference.serving.pipeline import inference_job_run
from tests.conftest import api_client_for
from tests.dciodvfy import dciodvfy
from tests.dicom_factory import make_dicom, patch_dicom
from tests.dicom_honesty import json_malignancy_claims, malignancy_claims

STUDY_UID = "1.2.826.0.1.3680043.8.498.4242"
IODS = {"image_sr": "ComprehensiveSR", "study_sr": "ComprehensiveSR", "overlay_sc": "SCImage",
        "cad_sr": "MammographyCADSR"}  # fmt: skip


@pytest.fixture(autouse=True)
def _stable_at_once(settings):
    settings.DICOM_STUDY_STABLE_SECONDS = 0


def view(side: str, view_name: str, orientation: list[str] | None, n: int) -> IncomingFile:
    data = make_dicom(laterality=side, view=view_name, study_uid=STUDY_UID, patient_id="W-4242",
                      sop_uid=f"{STUDY_UID}.{n}")  # fmt: skip
    if orientation is not None:
        data = patch_dicom(data, PatientOrientation=orientation)
    return IncomingFile.from_bytes(f"{side}{view_name}.dcm", data)


def analyse(study) -> list[Prediction]:
    for job in InferenceJob.objects.filter(image__study=study, status="queued").order_by("pk"):
        inference_job_run(job_id=job.pk)
    return list(Prediction.objects.filter(image__study=study).order_by("pk"))


def valid(obj: DicomResultObject, tmp_path) -> pydicom.Dataset:
    data = storage.read(obj.file)
    path = tmp_path / f"{obj.kind}-{obj.pk}.dcm"
    path.write_bytes(data)
    verdict = dciodvfy(path)
    assert verdict.iod == IODS[obj.kind] and verdict.errors == [], verdict.output
    ds = pydicom.dcmread(BytesIO(data))
    assert malignancy_claims(ds) == [], obj.kind
    return ds


@pytest.mark.django_db
def test_every_view_gets_its_objects_and_the_study_one_report_in_versions(technologist, active_model, tmp_path):
    # Real units write combined orientations for MLO views (A\FR, P\FL); one view has none at all.
    files = [view("R", "CC", ["P", "L"], 1), view("L", "CC", ["A", "R"], 2), view("R", "MLO", ["P", "FL"], 3)]
    study = study_upload(user=technologist, files=files).study
    predictions = analyse(study)
    for prediction in predictions:
        made = dicom_image_results_build(prediction_id=prediction.pk)
        assert sorted(o.kind for o in made) == ["image_sr", "overlay_sc"] and all(o.is_built for o in made)
        assert dicom_image_results_build(prediction_id=prediction.pk) == []  # made once
    first = {o.kind: o for o in dicom_study_results_build(study_id=study.pk)}
    assert sorted(first) == ["cad_sr", "study_sr"] and {o.version for o in first.values()} == {1}
    assert dicom_study_results_build(study_id=study.pk) == []  # the same content: no second report
    for obj in DicomResultObject.objects.filter(study=study):
        ds = valid(obj, tmp_path)
        if obj.kind == "overlay_sc":
            assert list(ds.PatientOrientation) == list(pydicom.dcmread(BytesIO(storage.read(obj.image.original)))
                                                        .PatientOrientation)  # fmt: skip
    # A later image (the fourth view, without orientation) and its analysis: version 2 of each report, which
    # references version 1 in the same DICOM study; version 1 is no longer current.
    later = view("L", "MLO", None, 4)
    study_upload(user=technologist, files=[later], study=study)
    [fourth] = [p for p in analyse(study) if p.image.view == "MLO" and p.image.laterality == "L"]
    dicom_image_results_build(prediction_id=fourth.pk)
    second = {o.kind: o for o in dicom_study_results_build(study_id=study.pk)}
    assert {o.version for o in second.values()} == {2}
    for kind, obj in second.items():
        ds = valid(obj, tmp_path)
        assert obj.predecessor_id == first[kind].pk and ds.StudyInstanceUID == first[kind].study_instance_uid
        [predecessor] = ds.PredecessorDocumentsSequence
        assert predecessor.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
            first[kind].sop_instance_uid
        )
        first[kind].refresh_from_db()
        assert not first[kind].is_current and obj.is_current
    cad = pydicom.dcmread(BytesIO(storage.read(second["cad_sr"].file)))
    assert cad.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.50" and cad.ContentQualification == "RESEARCH"
    assert DicomResultObject.objects.filter(study=study, image__isnull=False).count() == 8


@pytest.mark.django_db
def test_a_failed_analysis_is_reported_by_the_cad_sr_and_never_blocks_the_study_report(
    technologist, active_model, tmp_path
):
    study = study_upload(user=technologist, files=[view("R", "CC", None, 11), view("L", "CC", None, 12)]).study
    broken = study.images.get(laterality="L")
    storage.put(broken.working_image, b"not an image", overwrite=True)
    analyse(study)
    assert InferenceJob.objects.get(image=broken).status == "failed"
    made = {o.kind: o for o in dicom_study_results_build(study_id=study.pk)}
    cad = valid(made["cad_sr"], tmp_path)
    texts = str(cad)
    assert "Failed Detections" in texts and "Successful Detections" in texts


@pytest.mark.django_db
def test_an_object_that_cannot_be_made_is_shown_with_its_reason_and_a_retry_makes_it(
    client, technologist, radiologist, admin_user, active_model, tmp_path, settings
):
    from audit.models import AuditEvent

    study = study_upload(user=technologist, files=[view("R", "CC", None, 21)]).study
    [prediction] = analyse(study)
    image = prediction.image
    original = storage.read(image.original)
    storage.delete(image.original)  # the stored original is away: the objects cannot read its header
    made = dicom_image_results_build(prediction_id=prediction.pk)
    assert {o.kind: o.status for o in made} == {"image_sr": "failed", "overlay_sc": "failed"}
    failed = made[0]
    assert "could not be made" in failed.error_message and "No such file" in failed.error_message
    assert AuditEvent.objects.filter(action="dicom.result_failed", object_id=str(failed.pk)).exists()
    # The study page says so, with a retry; so do the API, the operations page and /healthz.
    client.force_login(radiologist)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Could not be made" in page and f"/dicom-results/{failed.pk}/retry/" in page
    rows = api_client_for(radiologist).get(f"/api/studies/{study.pk}/dicom-results/").json()
    assert {r["kind"]: r["state"] for r in rows if r["of"] == "Right CC"} == {
        "image_sr": "failed",
        "overlay_sc": "failed",
    }
    assert json_malignancy_claims(rows) == []
    health = client.get("/healthz").json()
    assert health["status"] == "degraded" and health["results"]["failed_objects"] == 2
    client.force_login(admin_user)
    operations = client.get("/operations/").content.decode()
    assert "could not be made" in operations and "No such file" in operations
    listed = api_client_for(admin_user).get("/api/operations/").json()
    assert {o["kind"] for o in listed["objects"]} == {"image_sr", "overlay_sc"}
    # The file is back; a person retries: the retry is asked for in the outbox, and the worker's run makes it.
    storage.put(image.original, original)
    client.force_login(radiologist)
    assert client.post(f"/dicom-results/{failed.pk}/retry/").status_code == 302
    message = OutboxMessage.objects.get(key=f"dicom-image-results:{prediction.pk}")
    assert message.status in ("pending", "sent") and message.kwargs == {"prediction_id": prediction.pk}
    remade = dicom_image_results_build(prediction_id=prediction.pk)
    assert {o.kind: o.status for o in remade} == {"image_sr": "built", "overlay_sc": "built"}
    assert {o.pk for o in remade} == {o.pk for o in made}  # the same rows, now made: nothing left behind
    for obj in remade:
        valid(obj, tmp_path)
    assert client.get("/healthz").json()["results"]["failed_objects"] == 0


@pytest.mark.django_db
def test_a_site_chooses_the_objects_it_makes(technologist, active_model, settings):
    settings.DICOM_RESULT_OBJECTS = ["cad_sr"]
    study = study_upload(user=technologist, files=[view("R", "CC", None, 31)]).study
    [prediction] = analyse(study)
    assert dicom_image_results_build(prediction_id=prediction.pk) == []
    assert [o.kind for o in dicom_study_results_build(study_id=study.pk)] == ["cad_sr"]


@pytest.mark.django_db
def test_a_study_report_waits_until_the_study_is_stable(technologist, active_model, settings):
    from django.utils import timezone

    settings.DICOM_STUDY_STABLE_SECONDS = 60
    study = study_upload(user=technologist, files=[view("R", "CC", None, 41)]).study
    analyse(study)
    assert dicom_study_results_build(study_id=study.pk) == []  # the last image came less than 60 s ago
    message = OutboxMessage.objects.get(key=f"dicom-study-results:{study.pk}")
    newest = Image.objects.filter(study=study).latest("created_at").created_at
    assert message.status == "pending" and abs((message.send_after - newest).total_seconds() - 60) < 1
    assert message.send_after > timezone.now()


@pytest.mark.django_db
def test_only_a_failed_object_can_be_retried(technologist, radiologist, active_model):
    from core.errors import ApplicationError

    study = study_upload(user=technologist, files=[view("R", "CC", None, 51)]).study
    [prediction] = analyse(study)
    [obj, _] = dicom_image_results_build(prediction_id=prediction.pk)
    with pytest.raises(ApplicationError, match="nothing to retry"):
        dicom_result_retry(result_id=obj.pk, user=radiologist)
