"""Uploads through the page and the API: DICOM flavours, PNG/JPEG, batches with bad files, duplicates, waiting for
a model, and that nothing is left in storage after a rejection."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from cases.models import Image, Patient, Study
from cases.studies.ingestion import IncomingFile, study_upload
from inference.models import InferenceJob
from tests.conftest import api_client_for
from tests.dicom_factory import (
    make_dicom,
    make_dicom_claiming_size,
    make_png,
    make_png_claiming_size,
    make_rgb_dicom,
    make_sr_dicom,
)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def _post(client, files, **fields):
    uploads = [SimpleUploadedFile(name, data) for name, data in files]
    return client.post("/api/studies/", {"files": uploads, **fields}, format="multipart")


@pytest.mark.django_db
def test_it_accepts_good_files_and_reports_each_bad_one_by_name(technologist, settings):
    client = api_client_for(technologist)
    files = [
        ("L_CC.dcm", make_dicom(sop_uid="1.2.3.1", laterality="L", view="CC", patient_id="Mass-Test_P_00173_LEFT_CC")),
        ("R_MLO.dcm", make_dicom(sop_uid="1.2.3.2", laterality="R", view="MLO", transfer_syntax=RLELossless,
                                 patient_id="Mass-Test_P_00173_RIGHT_MLO")),
        ("report.dcm", make_sr_dicom()),
        ("colour.dcm", make_rgb_dicom()),
        ("bomb.dcm", make_dicom_claiming_size(rows=60_000, columns=60_000)),
        ("empty.dcm", b""),
        ("notes.txt", b"this is not an image at all"),
        ("mislabelled.png", make_dicom(sop_uid="1.2.3.3")),
    ]  # fmt: skip
    response = _post(client, files)
    assert response.status_code == 201, response.content
    outcomes = {o["filename"]: o for o in response.json()["files"]}
    assert outcomes["L_CC.dcm"]["status"] == "accepted"
    assert outcomes["R_MLO.dcm"]["status"] == "accepted"
    expected = {
        "report.dcm": "no_pixel_data",
        "colour.dcm": "colour",
        "bomb.dcm": "too_many_pixels",
        "empty.dcm": "empty_file",
        "notes.txt": "not_dicom",
        "mislabelled.png": "extension_mismatch",
    }
    for name, code in expected.items():
        assert outcomes[name]["status"] == "rejected", name
        assert outcomes[name]["code"] == code, (name, outcomes[name])
        assert outcomes[name]["reason"].endswith("."), outcomes[name]["reason"]
    study = Study.objects.get()
    # CBIS-DDSM style PatientIDs (one per view) are one woman.
    assert study.patient.patient_id == "P_00173"
    assert sorted(study.images.values_list("laterality", "view")) == [("L", "CC"), ("R", "MLO")]
    # Only the accepted files' originals, previews, working images and viewer pixels are in storage: no orphans from
    # the rejected ones, and nothing left in the incoming folder.
    stored = _files(settings.MEDIA_ROOT)
    assert sorted(p.relative_to(settings.MEDIA_ROOT).parts[0] for p in stored) == [
        "originals",
        "originals",
        "previews",
        "previews",
        "viewer",
        "viewer",
        "working",
        "working",
    ]
    assert {p.name.split(".")[0] for p in stored} == set(Image.objects.values_list("sha256", flat=True))


@pytest.mark.django_db
def test_it_rejects_a_batch_of_only_bad_files_with_400_and_stores_nothing(technologist, settings):
    response = _post(api_client_for(technologist), [("bomb.png", make_png_claiming_size(width=90_000, height=90_000))])
    assert response.status_code == 400
    body = response.json()
    assert body["files"][0]["code"] == "too_many_pixels"
    assert not Study.objects.exists()
    assert _files(settings.MEDIA_ROOT) == []


@pytest.mark.django_db
def test_it_refuses_a_file_over_the_size_limit_without_reading_it_all(technologist, settings):
    settings.MAMMO_MAX_FILE_BYTES = 10_000
    response = _post(api_client_for(technologist), [("big.dcm", make_dicom(rows=256, columns=256))])
    assert response.status_code == 400
    assert response.json()["files"][0]["code"] == "file_too_large"


@pytest.mark.django_db
def test_it_rejects_truncated_pixel_data(technologist):
    data = make_dicom(rows=256, columns=192, transfer_syntax=RLELossless)
    response = _post(api_client_for(technologist), [("cut.dcm", data[: len(data) // 2])])
    assert response.status_code == 400
    assert response.json()["files"][0]["code"] == "corrupt_pixel_data"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "photometric"),
    [
        ({"bits_stored": 8}, "MONOCHROME2"),
        ({"bits_stored": 12, "photometric": "MONOCHROME1"}, "MONOCHROME1"),
        ({"bits_stored": 16, "transfer_syntax": RLELossless, "voi": "window"}, "MONOCHROME2"),
        ({"bits_stored": 16, "transfer_syntax": JPEGLSLossless, "voi": "lut"}, "MONOCHROME2"),
        ({"bits_stored": 16, "transfer_syntax": JPEG2000Lossless, "rescale": (2.0, -100.0)}, "MONOCHROME2"),
    ],
)
def test_it_stores_dicom_flavours_with_their_attributes(technologist, kwargs, photometric):
    data = make_dicom(sop_uid="1.2.3.77", laterality="R", view="MLO", **kwargs)
    result = study_upload(user=technologist, files=[IncomingFile.from_bytes("x.dcm", data)])
    assert result.accepted, result.outcomes
    image = Image.objects.get()
    assert (image.laterality, image.view) == ("R", "MLO")
    assert image.photometric_interpretation == photometric
    assert image.bits_stored == kwargs["bits_stored"]
    assert image.sop_instance_uid == "1.2.3.77"
    assert len(image.sha256) == 64 and image.size_bytes == len(data)


@pytest.mark.django_db
def test_it_takes_side_and_view_of_png_from_the_form_or_the_file_name(technologist):
    client = api_client_for(technologist)
    response = _post(client, [("scan.png", make_png())], patient_id="PAT-1")
    assert response.status_code == 400
    assert response.json()["files"][0]["code"] == "laterality_missing"

    response = _post(client, [("scan.png", make_png())], patient_id="PAT-1", laterality="L", view="MLO")
    assert response.status_code == 201
    image = Image.objects.get()
    assert (image.laterality, image.view, image.source_format) == ("L", "MLO", "png")

    response = _post(client, [("R_CC.jpg", _jpeg())], patient_id="PAT-1")
    assert response.status_code == 201
    assert Image.objects.filter(laterality="R", view="CC", source_format="jpeg").exists()
    assert Patient.objects.count() == 1


def _jpeg() -> bytes:
    from tests.dicom_factory import make_jpeg

    return make_jpeg()


@pytest.mark.django_db
def test_it_requires_a_patient_id_for_png(technologist):
    response = _post(api_client_for(technologist), [("L_CC.png", make_png())])
    assert response.status_code == 400
    assert response.json()["files"][0]["code"] == "patient_missing"


@pytest.mark.django_db
def test_it_recognises_the_same_file_uploaded_twice(technologist, active_model, settings):
    client = api_client_for(technologist)
    data = make_dicom(sop_uid="1.2.3.50")
    first = _post(client, [("a.dcm", data)])
    assert first.status_code == 201
    files_after_first = _files(settings.MEDIA_ROOT)
    second = _post(client, [("copy-of-a.dcm", data)])
    assert second.status_code == 400
    outcome = second.json()["files"][0]
    assert outcome["status"] == "duplicate"
    assert outcome["image_id"] == Image.objects.get().pk
    other = make_dicom(sop_uid="1.2.3.51")
    same_batch = _post(client, [("b.dcm", other), ("b-again.dcm", other)])
    assert [o["status"] for o in same_batch.json()["files"]] == ["accepted", "duplicate"]
    assert Image.objects.count() == 2
    assert InferenceJob.objects.count() == 2
    assert len(_files(settings.MEDIA_ROOT)) == len(files_after_first) + 4  # original, preview, working, viewer pixels


@pytest.mark.django_db
def test_it_rejects_a_dicom_of_another_patient_in_the_same_study(technologist):
    response = _post(
        api_client_for(technologist),
        [
            ("a.dcm", make_dicom(sop_uid="1.9.1", patient_id="ANNA")),
            ("b.dcm", make_dicom(sop_uid="1.9.2", patient_id="BETH")),
        ],
    )
    assert response.status_code == 201
    outcomes = response.json()["files"]
    assert outcomes[1]["code"] == "patient_mismatch"
    assert "BETH" in outcomes[1]["reason"]


@pytest.mark.django_db
def test_it_keeps_jobs_waiting_without_an_active_model_and_queues_them_on_activation(technologist, tiny_model_file):
    from inference.lifecycle import model_version_accept_for_research, model_version_activate
    from inference.serving.registry import model_version_register

    result = study_upload(user=technologist, files=[IncomingFile.from_bytes("a.dcm", make_dicom(sop_uid="1.5"))])
    job = InferenceJob.objects.get()
    assert job.status == InferenceJob.Status.WAITING_FOR_MODEL
    assert "No active model" in job.error_message
    assert result.study.status == Study.Status.PROCESSING
    version = model_version_register(path=tiny_model_file, name="tiny", backbone="b0", input_size=64)
    job.refresh_from_db()
    assert job.status == InferenceJob.Status.WAITING_FOR_MODEL  # registering alone does not activate
    model_version_accept_for_research(model_version=version, accepted_by="the test")
    model_version_activate(model_version=version, confirm_unvalidated=True, confirmed_by="the test")
    job.refresh_from_db()
    assert job.status == InferenceJob.Status.QUEUED and job.model_version == version


@pytest.mark.django_db
def test_the_upload_page_creates_a_study_and_shows_the_rejections(client, technologist):
    client.force_login(technologist)
    page = client.get("/studies/new/")
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    response = client.post(
        "/studies/new/",
        {"files": [SimpleUploadedFile("L_CC.dcm", make_dicom(sop_uid="1.7.1")), SimpleUploadedFile("bad.dcm", b"xx")]},
        follow=True,
    )
    assert response.status_code == 200
    study = Study.objects.get()
    assert response.redirect_chain[-1][0] == f"/studies/{study.pk}/"
    assert b"bad.dcm" in response.content and b"not a DICOM" in response.content
