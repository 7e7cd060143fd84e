"""In a real browser: a technologist uploads a mammogram and a radiologist sees the prediction and heatmap."""

from __future__ import annotations

import os

import pytest

from inference.models import InferenceJob
from tests.browser import check_accessibility, screenshot, sign_in, sign_out
from tests.conftest import PASSWORD, wait_for
from tests.dicom_factory import make_dicom

pytestmark = [pytest.mark.browser, pytest.mark.worker]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def test_it_uploads_in_the_browser_and_shows_the_heatmap(
    browser, live_server, celery_worker, technologist, radiologist, active_model, tmp_path
):
    dicom = tmp_path / "R_MLO.dcm"
    dicom.write_bytes(make_dicom(rows=400, columns=300, laterality="R", view="MLO", patient_id="BROWSER-1"))
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    sign_in(page, live_server.url, technologist.username, PASSWORD)
    # A rejected upload: the error summary spans the form, above it, instead of taking the first cell and shifting
    # every field; focus moves to it.
    page.goto(f"{live_server.url}/studies/new/")
    check_accessibility(page, "upload page")
    form_box = page.locator("form.grid-form").bounding_box()
    first_field = page.locator("form.grid-form label").first.bounding_box()
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    page.set_input_files("input[name=files]", str(bad))
    page.click("form.grid-form button[type=submit]")
    page.wait_for_selector(".error-summary")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    errors = page.locator(".error-summary").bounding_box()
    assert errors["width"] > 0.95 * form_box["width"]
    after = page.locator("form.grid-form label").first.bounding_box()
    assert abs(after["x"] - first_field["x"]) < 1
    check_accessibility(page, "upload refused")
    screenshot(page, "upload-rejected")

    page.set_input_files("input[name=files]", str(dicom))
    page.click("form.grid-form button[type=submit]")
    page.wait_for_url("**/studies/*/")
    assert "1 image(s) stored" in page.inner_text(".messages")
    wait_for(lambda: InferenceJob.objects.filter(status="succeeded").exists(), worker=celery_worker)
    # The page polls and updates by itself, without a manual reload.
    page.wait_for_selector(".job-status.status-succeeded", timeout=30_000)
    assert "p =" not in page.content()  # technologists do not see AI results
    check_accessibility(page, "study page, analysed")
    screenshot(page, "upload-technologist-study")
    sign_out(page)

    sign_in(page, live_server.url, radiologist.username, PASSWORD)
    page.goto(f"{live_server.url}/studies/")
    page.click("table.list a")
    page.click(".thumb a")
    # The image in the reading viewer (issue 13), fitted to the window, its heatmap on (the AI switch is on here).
    page.wait_for_selector("[data-mammo-viewer][data-state=ready]")
    page.wait_for_selector(".mv-heatmap[src]")
    # The test model has no test figures: its output is a neutral research score, and the page says why.
    assert page.inner_text(".label").lower().startswith("research score")
    assert "Not validated" in page.inner_text(".ai-note")
    assert page.locator(".label-malignant, .label-benign").count() == 0
    page.fill('[data-control="opacity"]', "80")
    page.dispatch_event('[data-control="opacity"]', "input")
    assert page.eval_on_selector(".mv-heatmap", "el => getComputedStyle(el).opacity") == "0.8"
    overlay = page.request.get(live_server.url + page.get_attribute(".mv-heatmap", "src"))
    assert overlay.status == 200 and overlay.headers["content-type"] == "image/png"
    screenshot(page, "upload-radiologist-heatmap")
    check_accessibility(page, "image page with its heatmap")
