"""The AI inventory: pages, API and exports. Administrators and lead radiologists read it; only administrators
import models and change their status; everyone else is refused; forms need their CSRF token."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audit.models import AuditEvent
from inference.lifecycle import model_status_record_created, model_version_status_change
from inference.models import ModelVersion
from tests import model_files
from tests.conftest import api_client_for


@pytest.fixture
def inventory(db):
    """One model of each kind (rows only: these tests are about the pages; test_model_import uses real files)."""
    malignancy = ModelVersion.objects.create(
        name="=cmd|acme", backbone="imported", runtime="onnx", input_size=64, file="a.onnx", file_sha256="a" * 64,
        preprocessing_version="1", manifest=model_files.manifest("acme"), conformance={"heatmap": False},
    )  # fmt: skip
    density = ModelVersion.objects.create(
        name="density-1", kind="density", runtime="weights", backbone="nyu-histogram", input_size=0, file="d.npz",
        file_sha256="d" * 64, preprocessing_version="1",
    )  # fmt: skip
    for version in (malignancy, density):
        model_status_record_created(model_version=version, actor_name="test", reason="Imported for the test.")
    return {"malignancy": malignancy, "density": density}


def _reads(inventory):
    pk = inventory["malignancy"].pk
    return ["/models/", f"/models/{pk}/", "/models/inventory.csv", "/models/inventory.json"], [
        "/api/models/", f"/api/models/{pk}/",
    ]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin_user", "lead"])
def test_administrators_and_leads_read_the_inventory(client, inventory, role, request):
    user = request.getfixturevalue(role)
    pages, apis = _reads(inventory)
    client.force_login(user)
    for url in pages:
        assert client.get(url).status_code == 200, url
    api = api_client_for(user)
    for url in apis:
        assert api.get(url).status_code == 200, url


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["technologist", "radiologist", "auditor"])
def test_other_roles_are_refused_the_inventory_and_every_change(client, inventory, role, request, tiny_model_file):
    user = request.getfixturevalue(role)
    pages, apis = _reads(inventory)
    pk = inventory["malignancy"].pk
    client.force_login(user)
    for url in [*pages, "/models/import/"]:
        assert client.get(url).status_code == 403, url
    assert client.post(f"/models/{pk}/status/", {"to_status": "retired", "reason": "x"}).status_code == 403
    api = api_client_for(user)
    for url in apis:
        assert api.get(url).status_code == 403, url
    assert api.post(f"/api/models/{pk}/status/", {"to_status": "retired", "reason": "x"}).status_code == 403
    assert ModelVersion.objects.get(pk=pk).status == "imported"


@pytest.mark.django_db
def test_a_lead_reads_but_does_not_change(client, inventory, lead):
    pk = inventory["malignancy"].pk
    client.force_login(lead)
    page = client.get(f"/models/{pk}/").content.decode()
    assert 'id="status-form"' not in page and "Administrators change a model's status" in page
    assert client.get("/models/import/").status_code == 403
    assert client.post(f"/models/{pk}/status/", {"to_status": "retired", "reason": "x"}).status_code == 403
    response = api_client_for(lead).post(f"/api/models/{pk}/status/", {"to_status": "retired", "reason": "x"})
    assert response.status_code == 403
    assert ModelVersion.objects.get(pk=pk).status == "imported"


@pytest.mark.django_db
def test_signed_out_users_go_to_the_login_page_and_the_api_answers_401(client, inventory):
    pages, apis = _reads(inventory)
    for url in [*pages, "/models/import/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    for url in apis:
        assert client.get(url).status_code == 401, url


@pytest.mark.django_db
def test_an_administrator_changes_a_status_with_a_reason_recorded_in_the_history(inventory, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    version = inventory["malignancy"]
    url = f"/models/{version.pk}/status/"
    assert client.post(url, {"to_status": "shadow", "reason": "try it"}).status_code == 403  # no CSRF token
    page = client.get(f"/models/{version.pk}/")
    token = page.cookies["csrftoken"].value
    response = client.post(url, {"to_status": "active", "reason": "x", "csrfmiddlewaretoken": token})
    # Not allowed from imported: the page again (400) with its error summary linked to the status; nothing changes.
    assert response.status_code == 400 and 'class="error-summary"' in response.content.decode()
    assert 'href="#id_to_status"' in response.content.decode()
    version.refresh_from_db()
    assert version.status == "imported"
    client.post(url, {"to_status": "shadow", "reason": "Run beside the active model", "csrfmiddlewaretoken": token})
    version.refresh_from_db()
    assert version.status == "shadow"
    page = client.get(f"/models/{version.pk}/").content.decode()
    assert "Run beside the active model" in page and admin_user.username in page
    assert AuditEvent.objects.filter(action="model.status_changed", actor_id=admin_user.pk).count() == 1
    # The API does the same, through the same service.
    api = api_client_for(admin_user)
    response = api.post(f"/api/models/{version.pk}/status/", {"to_status": "accepted", "reason": "ok"}, format="json")
    assert response.status_code == 400 and "acceptance report" in response.json()["detail"]  # no evidence: refused
    response = api.post(
        f"/api/models/{version.pk}/status/",
        {"to_status": "accepted", "reason": "ok", "for_research": True},
        format="json",
    )
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert response.json()["history"][-1]["reason"].startswith("Accepted for research use")
    assert [h["to"] for h in response.json()["history"]] == ["imported", "shadow", "accepted"]
    response = api.post(f"/api/models/{version.pk}/status/", {"to_status": "suspended", "reason": "x"}, format="json")
    assert response.status_code == 400 and "cannot become suspended" in response.json()["detail"]


@pytest.mark.django_db
def test_the_inventory_lists_both_kinds_with_status_validation_and_history(client, inventory, admin_user):
    model_version_status_change(
        model_version=inventory["density"], to_status="accepted", reason="research use", actor=admin_user,
        for_research=True,
    )  # fmt: skip
    client.force_login(admin_user)
    page = client.get("/models/").content.decode()
    for text in ("=cmd|acme", "density-1", "Breast density", "Test vendor", "ONNX", "no heatmap", "Accepted",
                 "research use", "AUC 0.50 (0.40–0.60)"):  # fmt: skip
        assert text in page, text
    assert "density-1" not in client.get("/models/?kind=malignancy").content.decode()
    body = api_client_for(admin_user).get("/api/models/?kind=density").json()
    assert [m["name"] for m in body] == ["density-1"] and body[0]["status"] == "accepted"
    assert [h["to"] for h in body[0]["history"]] == ["imported", "accepted"]
    detail = api_client_for(admin_user).get(f"/api/models/{inventory['malignancy'].pk}/").json()
    assert detail["manifest"]["vendor"] == "Test vendor" and detail["gives_heatmap"] is False
    assert detail["validated"] is False and detail["runtime"] == "onnx"
    schema = api_client_for(admin_user).get("/api/schema/?format=json").json()
    assert {"/api/models/", "/api/models/{id}/", "/api/models/{id}/status/"} <= set(schema["paths"])


@pytest.mark.django_db
def test_the_inventory_exports_as_csv_and_json_and_each_export_is_audited(client, inventory, lead):
    client.force_login(lead)
    response = client.get("/models/inventory.csv")
    assert response["Content-Disposition"].startswith('attachment; filename="ai-inventory-')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    names = {row["name"] for row in rows}
    assert names == {"'=cmd|acme", "density-1"}  # a formula is never handed to a spreadsheet
    assert all(row["status"] == "imported" and row["status_changes"] == "1" for row in rows)
    data = json.loads(client.get("/models/inventory.json").content)
    assert {m["kind"] for m in data["models"]} == {"malignancy", "density"}
    assert data["models"][0]["history"][0]["reason"] == "Imported for the test."
    events = AuditEvent.objects.filter(action="model.inventory_exported", actor_id=lead.pk)
    assert sorted(e.details["format"] for e in events) == ["csv", "json"]


@pytest.mark.django_db
def test_an_administrator_imports_a_model_on_the_page_from_the_form_or_a_manifest_file(tmp_path, admin_user, client):
    client.force_login(admin_user)
    assert client.get("/models/import/").status_code == 200
    data = model_files.onnx_scorer(tmp_path / "m.onnx").read_bytes()
    form = {
        "name": "page-onnx", "version": "1", "vendor": "V", "licence": "MIT", "intended_use": "test",
        "training_data": "none", "input_views": ["CC", "MLO"], "input_size": 64, "input_channels": 1,
        "input_layout": "NCHW", "input_normalisation": "0-1", "input_bit_depth": 16, "output_unit": "image",
        "output_index": 0, "output_activation": "probability", "op_threshold": 0.4,
        "validation_summary": "none published",
    }  # fmt: skip
    response = client.post("/models/import/", {**form, "model_file": SimpleUploadedFile("m.onnx", data)})
    version = ModelVersion.objects.get(name="page-onnx")
    assert response.status_code == 302 and response["Location"] == f"/models/{version.pk}/"
    assert version.imported_by == admin_user and version.threshold == 0.4 and version.status == "imported"
    # The same from a JSON manifest file.
    manifest = json.dumps(model_files.manifest("page-onnx-2")).encode()
    response = client.post(
        "/models/import/",
        {"model_file": SimpleUploadedFile("m.onnx", data), "manifest_file": SimpleUploadedFile("m.json", manifest)},
    )
    assert response.status_code == 302 and ModelVersion.objects.filter(name="page-onnx-2").exists()
    # Missing fields: a 400 with an error beside each, and nothing imported.
    response = client.post("/models/import/", {"name": "x", "model_file": SimpleUploadedFile("m.onnx", data)})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert {"vendor", "input_size", "input_views", "op_threshold", "validation_summary"} <= set(errors)
    assert not ModelVersion.objects.filter(name="x").exists()


@pytest.mark.django_db
def test_the_import_page_refuses_a_file_over_the_limit_and_a_file_it_cannot_run(tmp_path, admin_user, client, settings):
    client.force_login(admin_user)
    manifest = SimpleUploadedFile("m.json", json.dumps(model_files.manifest("big")).encode())
    settings.MODEL_IMPORT_MAX_BYTES = 100
    data = model_files.onnx_scorer(tmp_path / "m.onnx").read_bytes()
    response = client.post("/models/import/", {"model_file": SimpleUploadedFile("m.onnx", data),
                                               "manifest_file": manifest})  # fmt: skip
    assert response.status_code == 400 and "over the 0 MB limit" in response.content.decode()
    settings.MODEL_IMPORT_MAX_BYTES = 10**8
    manifest = SimpleUploadedFile("m.json", json.dumps(model_files.manifest("evil")).encode())
    evil = model_files.onnx_with_custom_op(tmp_path / "evil.onnx").read_bytes()
    response = client.post("/models/import/", {"model_file": SimpleUploadedFile("evil.onnx", evil),
                                               "manifest_file": manifest})  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 400 and "outside the standard domains" in page and "✗ Loads safely" in page
    assert not ModelVersion.objects.exists()
    assert AuditEvent.objects.filter(action="model.import_refused").count() == 2
