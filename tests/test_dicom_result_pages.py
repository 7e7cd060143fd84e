"""The study page's "AI results as DICOM" table, its downloads and its retry button, and the same in the API:
who sees what, what is audited."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from io import BytesIO

import pydicom
import pytest
from django.utils import timezone

from tests.conftest import api_client_for
from tests.dicom_factory import make_dicom


@pytest.fixture
def result_object(db, technologist):
    """A received DICOM study with one stored SR result and a failed delivery of it."""
    from cases.dicom.ingest import dicom_file_ingest
    from cases.models import DicomDelivery, DicomResultObject, Image
    from cases.studies.preparation import IncomingFile
    from core import storage
    from imaging.dicom_results.common import AiResult
    from imaging.dicom_results.measurement_report import image_result_sr
    from inference.models import ModelVersion

    data = make_dicom(study_uid="1.2.3.4.800", patient_id="W-800")
    received = IncomingFile.from_bytes("received.dcm", data)
    outcome = dicom_file_ingest(incoming=replace(received, borrowed=True), sop_instance_uid="x", user=technologist)
    received.discard()
    image = Image.objects.get(pk=outcome.image_id)
    version = ModelVersion.objects.create(name="m-test", backbone="custom", input_size=64, file="m.keras",
                                          file_sha256="ab" * 32, preprocessing_version="1")  # fmt: skip
    result = AiResult(model_name="m-test", model_version="1", model_sha256="ab" * 32, validated=False,
                      validation_summary="not validated (no test figures)", score=0.7, operating_point=0.5,
                      peak_row=10, peak_column=10, created_at=timezone.now())  # fmt: skip
    sr = image_result_sr(source=pydicom.dcmread(BytesIO(data)), result=result)
    out = BytesIO()
    sr.save_as(out, enforce_file_format=True)
    sha = hashlib.sha256(out.getvalue()).hexdigest()
    storage.put(f"dicom-results/{sha[:2]}/{sha}.dcm", out.getvalue())
    obj = DicomResultObject.objects.create(
        study=image.study, image=image, model_version=version, kind=DicomResultObject.Kind.IMAGE_SR,
        sop_class_uid=sr.SOPClassUID, sop_instance_uid=sr.SOPInstanceUID, series_instance_uid=sr.SeriesInstanceUID,
        study_instance_uid=sr.StudyInstanceUID, file=f"dicom-results/{sha[:2]}/{sha}.dcm", sha256=sha,
        size_bytes=len(out.getvalue()),
    )  # fmt: skip
    DicomDelivery.objects.create(result=obj, destination="C-STORE PACS@127.0.0.1:1", status="failed", attempts=8,
                                 last_error="No association with PACS@127.0.0.1:1 (no connection)")  # fmt: skip
    obj.data = out.getvalue()
    return obj


def test_a_radiologist_sees_downloads_and_can_retry_a_failed_delivery(client, radiologist, result_object):
    from audit.models import AuditEvent
    from cases.models import DicomDelivery

    client.force_login(radiologist)
    page = client.get(f"/studies/{result_object.study_id}/").content.decode()
    assert "AI results as DICOM" in page and result_object.sop_instance_uid in page
    assert "No association with PACS@127.0.0.1:1" in page and "Retry" in page
    download = client.get(f"/dicom-results/{result_object.pk}/file/")
    assert download.status_code == 200 and download["Content-Type"] == "application/dicom"
    assert b"".join(download.streaming_content) == result_object.data
    assert AuditEvent.objects.filter(action="dicom.result_downloaded", actor_id=radiologist.pk).exists()
    delivery = result_object.deliveries.get()
    response = client.post(f"/dicom-deliveries/{delivery.pk}/retry/")
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DicomDelivery.Status.PENDING, 0)
    assert AuditEvent.objects.filter(action="dicom.delivery_retried", actor_id=radiologist.pk).exists()


def test_a_technologist_sees_no_ai_objects(client, technologist, result_object):
    client.force_login(technologist)
    page = client.get(f"/studies/{result_object.study_id}/").content.decode()
    assert "AI results as DICOM" not in page
    assert client.get(f"/dicom-results/{result_object.pk}/file/").status_code == 403
    api = api_client_for(technologist)
    assert api.get(f"/api/studies/{result_object.study_id}/dicom-results/").status_code == 403
    assert api.get(f"/api/dicom-results/{result_object.pk}/file/").status_code == 403


def test_an_auditor_cannot_retry_or_download(client, auditor, result_object):
    client.force_login(auditor)
    delivery = result_object.deliveries.get()
    assert client.post(f"/dicom-deliveries/{delivery.pk}/retry/").status_code == 403
    assert client.get(f"/dicom-results/{result_object.pk}/file/").status_code == 403


def test_the_api_lists_objects_with_their_deliveries_and_serves_the_file(radiologist, result_object):
    api = api_client_for(radiologist)
    rows = api.get(f"/api/studies/{result_object.study_id}/dicom-results/").json()
    # Every object the site makes is listed, made or not: nothing expected is just absent.
    assert {row["kind"] for row in rows} == {"image_sr", "overlay_sc", "study_sr", "cad_sr"}
    [row] = [row for row in rows if row["kind"] == "image_sr"]
    listed = row["object"]
    assert row["state"] == "made" and row["of"] == "Left CC"
    assert listed["sop_instance_uid"] == result_object.sop_instance_uid and listed["kind"] == "image_sr"
    assert listed["deliveries"][0]["status"] == "failed" and listed["deliveries"][0]["attempts"] == 8
    waiting = [row for row in rows if row["kind"] != "image_sr"]
    assert all(row["state"] == "waiting" and row["object"] is None and row["explanation"] for row in waiting)
    response = api.get(listed["file_url"])
    assert response.status_code == 200
    assert pydicom.dcmread(BytesIO(b"".join(response.streaming_content))).SOPInstanceUID == (
        result_object.sop_instance_uid
    )


def test_storage_reconciliation_keeps_result_objects(result_object):
    from cases.studies.reconciliation import storage_reconcile
    from core import storage

    report = storage_reconcile(grace_seconds=0)
    assert result_object.file not in report.removed and storage.exists(result_object.file)
    assert result_object.file not in report.missing


def test_dicomweb_shows_result_objects_only_to_those_who_may_see_ai(client, radiologist, technologist, result_object):
    sop = result_object.sop_instance_uid
    path = f"/dicomweb/studies/{result_object.study_instance_uid}/series/{result_object.series_instance_uid}"
    radiologist_api, technologist_api = api_client_for(radiologist), api_client_for(technologist)
    listed = radiologist_api.get(f"/dicomweb/studies/{result_object.study_instance_uid}/instances")
    assert sop in {item["00080018"]["Value"][0] for item in listed.json()}
    retrieved = radiologist_api.get(
        f"{path}/instances/{sop}", HTTP_ACCEPT='multipart/related; type="application/dicom"'
    )
    assert retrieved.status_code == 200 and result_object.data in retrieved.content
    hidden = technologist_api.get(f"/dicomweb/studies/{result_object.study_instance_uid}/instances")
    assert sop not in {item["00080018"]["Value"][0] for item in hidden.json()}  # the received image only
    assert technologist_api.get(f"{path}/instances/{sop}").status_code == 404


def test_results_are_sent_over_stow_rs_and_a_refusing_archive_is_an_error(tmp_path_factory, result_object):
    from cases.dicom.delivery import DeliveryError, send_object
    from tests.orthanc import orthanc_running

    with orthanc_running(tmp_path_factory.mktemp("pacs")) as pacs:
        answer = send_object(f"STOW-RS {pacs.dicomweb_url}", result_object.data)
        assert answer == "STOW-RS HTTP 200"
        [found] = pacs.find_instances(SOPInstanceUID=result_object.sop_instance_uid)
        assert pydicom.dcmread(BytesIO(pacs.instance_file(found["ID"]))).Modality == "SR"
        # Orthanc accepts C-STORE only from modalities it knows: the platform is not one of them here.
        with pytest.raises(DeliveryError, match="No association"):
            send_object(f"C-STORE {pacs.aet}@127.0.0.1:{pacs.dicom_port}", result_object.data)
