"""Who may see and do what: every page and endpoint refuses the wrong role, and signed-out users are sent to the
login page (pages) or answered 401 (API). Files are never served without a signed-in, allowed user."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cases.studies.ingestion import IncomingFile, study_upload
from inference.models import InferenceJob
from tests.conftest import api_client_for
from tests.dicom_factory import make_dicom


@pytest.fixture
def study(technologist):
    result = study_upload(user=technologist, files=[IncomingFile.from_bytes("L_CC.dcm", make_dicom(sop_uid="1.4.1"))])
    return result.study


def _pages(study):
    image = study.images.get()
    return [
        "/studies/",
        "/studies/new/",
        f"/studies/{study.pk}/",
        f"/studies/{study.pk}/status.json",
        f"/images/{image.pk}/",
        f"/images/{image.pk}/preview/",
        f"/images/{image.pk}/original/",
    ]


@pytest.mark.django_db
def test_it_sends_signed_out_users_to_the_login_page(client, study):
    for url in _pages(study):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url
    assert client.get("/accounts/login/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["auditor", "admin_user"])
def test_it_refuses_clinical_pages_and_images_to_non_clinical_roles(client, study, role_fixture, request):
    client.force_login(request.getfixturevalue(role_fixture))
    for url in _pages(study):
        assert client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_it_lets_a_technologist_upload_but_not_see_ai_results(client, study, technologist, active_model):
    image = study.images.get()
    client.force_login(technologist)
    assert client.get(f"/studies/{study.pk}/").status_code == 200
    assert client.get(f"/images/{image.pk}/preview/").status_code == 200
    assert client.get(f"/images/{image.pk}/heatmap/").status_code == 403
    body = api_client_for(technologist).get(f"/api/studies/{study.pk}/").json()
    assert body["images"][0]["prediction"] is None
    assert all(b["score"] is None and b["call"] is None for b in body["breasts"])


@pytest.mark.django_db
def test_it_refuses_uploads_from_roles_that_may_not_upload(auditor, admin_user):
    for user in (auditor, admin_user):
        client = api_client_for(user)
        response = client.post(
            "/api/studies/", {"files": [SimpleUploadedFile("a.dcm", make_dicom())]}, format="multipart"
        )
        assert response.status_code == 403
        assert client.get("/api/studies/").status_code == 403


@pytest.mark.django_db
def test_it_answers_401_to_the_api_without_a_token(client, study):
    image = study.images.get()
    for url in ["/api/studies/", f"/api/studies/{study.pk}/", f"/api/images/{image.pk}/preview/", "/api/schema/"]:
        assert client.get(url).status_code == 401, url


@pytest.mark.django_db
def test_it_serves_the_openapi_schema_to_signed_in_users(radiologist):
    response = api_client_for(radiologist).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/studies/" in response.content and b"/api/auth/token/" in response.content


@pytest.mark.django_db
def test_it_refuses_job_retry_to_roles_that_may_not_upload(study, auditor):
    job = InferenceJob.objects.get()
    assert api_client_for(auditor).post(f"/api/jobs/{job.pk}/retry/").status_code == 403


@pytest.mark.django_db
def test_it_requires_csrf_tokens_on_page_forms(study, technologist):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(technologist)
    response = client.post("/studies/new/", {"patient_id": "X"})
    assert response.status_code == 403
    response = client.post(f"/jobs/{InferenceJob.objects.get().pk}/retry/")
    assert response.status_code == 403


@pytest.mark.django_db
def test_it_does_not_serve_uploads_from_a_public_path(client, study, technologist, settings):
    client.force_login(technologist)
    image = study.images.get()
    for url in [f"/media/{image.original}", f"/{image.original}", f"/static/../var/media/{image.original}"]:
        assert client.get(url).status_code == 404, url


@pytest.mark.django_db
def test_the_file_responses_are_private_and_not_cached(client, study, radiologist):
    client.force_login(radiologist)
    image = study.images.get()
    response = client.get(f"/images/{image.pk}/original/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content).startswith(b"\0" * 128 + b"DICM")
