"""In a real browser (Debian's chromium): an administrator imports an ONNX model on the import page with its
manifest file, accepts it and makes it active, and the inventory shows it with its history; a lead radiologist
reads the inventory without the means to change it. No Content-Security-Policy violation on the way."""

from __future__ import annotations

import json
import os

import pytest

from inference.models import ModelVersion
from tests import model_files
from tests.browser import check_accessibility, screenshot, sign_in, sign_out
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def test_an_administrator_imports_accepts_and_activates_a_model_and_a_lead_reads_it(
    browser, live_server, admin_user, lead, tmp_path
):
    model = model_files.onnx_scorer(tmp_path / "acme.onnx")
    manifest = tmp_path / "acme.json"
    manifest.write_text(json.dumps(model_files.manifest("acme-onnx-1")))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)

    sign_in(page, live_server.url, admin_user.username, PASSWORD)
    page.goto(f"{live_server.url}/models/")
    page.wait_for_selector("#model-inventory")
    assert page.get_attribute("nav a[href='/models/']", "href") == "/models/"  # in the navigation
    page.click("text=Import a model")
    page.set_input_files("input[name=model_file]", str(model))
    page.set_input_files("input[name=manifest_file]", str(manifest))
    page.click("button:has-text('Check and import')")
    page.wait_for_selector("#history", timeout=120_000)
    assert "acme-onnx-1" in page.inner_text("h1")
    assert "✓ Loads safely" in page.inner_text("#conformance")
    screenshot(page, "models-imported")
    check_accessibility(page, "models-imported")

    page.select_option("select[name=to_status]", "accepted")
    page.fill("textarea[name=reason]", "Accepted for the browser test")
    page.check("input[name=for_research]")  # no local acceptance report: for research use, said as such
    page.click("button:has-text('Change the status')")
    page.wait_for_selector(".msg-success")
    page.select_option("select[name=to_status]", "active")
    page.fill("textarea[name=reason]", "Make it the active model")
    page.click("button:has-text('Change the status')")
    page.wait_for_selector(".msg-error")  # not validated: it asks for the confirmation
    page.select_option("select[name=to_status]", "active")
    page.fill("textarea[name=reason]", "Make it the active model")
    page.check("input[name=confirm_unvalidated]")
    page.click("button:has-text('Change the status')")
    page.wait_for_selector(".msg-success")
    history = page.inner_text("#history")
    assert "Accepted for the browser test" in history and "Make it the active model" in history
    version = ModelVersion.objects.get(name="acme-onnx-1")
    assert version.is_active and version.status == "active"
    page.goto(f"{live_server.url}/models/")
    row = page.inner_text("tr[data-model='acme-onnx-1']")
    assert "Active" in row and "no heatmap" in row
    screenshot(page, "models-inventory")
    check_accessibility(page, "models-inventory")
    sign_out(page)

    sign_in(page, live_server.url, lead.username, PASSWORD)
    page.goto(f"{live_server.url}/models/{version.pk}/")
    assert page.query_selector("#status-form") is None
    assert "Import a model" not in page.inner_text("main")
    assert violations == []
