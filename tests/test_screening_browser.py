"""In a real browser (Debian's chromium) under the strict Content-Security-Policy: a mammographer starts on today's
clinic, checks a woman in and marks her symptom by clicking the breast diagram (breast_diagram.js fills the form);
a reader then sees what she recorded above the images on the reading page. Screenshots: screening-*.png."""

from __future__ import annotations

import math
import os

import pytest

from cases.models import Study
from cases.reading import claims
from cases.studies.ingestion import IncomingFile, study_upload
from tests.browser import check_accessibility, screenshot, sign_in
from tests.conftest import PASSWORD
from tests.screening_factory import book, mammogram

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def _watch_policy(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def test_a_mammographer_marks_a_symptom_on_the_diagram_and_a_reader_sees_it(browser, live_server, technologist,
                                                                            radiologist):  # fmt: skip
    appointment = book(technologist)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    violations = _watch_policy(page)
    sign_in(page, live_server.url, technologist.username, PASSWORD)
    assert page.url.rstrip("/").endswith("/clinic")  # the mammographer starts on today's clinic
    screenshot(page, "screening-clinic")
    check_accessibility(page, "screening-clinic")
    with page.expect_navigation():
        page.click("table.clinic-list a:has-text('Jones^Ada')")
    page.check("#id_checkin-identity_confirmed")
    with page.expect_navigation():
        page.click("#check-in button[type=submit]")
    expect(page.locator("h1 .status")).to_have_text("Checked in")

    # Her right breast is drawn on the left (as you face her); click at 10 o'clock, 60 % of the way out.
    svg = page.locator("svg[data-diagram-input]")
    svg.scroll_into_view_if_needed()
    scale = svg.bounding_box()["width"] / 380
    x, y = 100 + 42 * math.sin(math.radians(300)), 110 - 42 * math.cos(math.radians(300))
    svg.click(position={"x": x * scale, "y": y * scale})
    expect(page.locator("#id_symptom-clock_hour")).to_have_value("10")
    expect(page.locator("#id_symptom-area")).to_have_value("clock")
    assert page.locator("input[name='symptom-laterality'][value='R']").is_checked()
    assert page.locator("[data-pending-marker]").get_attribute("cx") != "-20"
    page.select_option("#id_symptom-kind", "lump")
    with page.expect_navigation():
        page.click("#symptoms button[type=submit]:has-text('Add the symptom')")
    expect(page.locator("#symptoms ol.symptoms")).to_contain_text(
        "Lump, right breast, 10 o'clock (upper outer quadrant), 6 cm from the nipple"
    )
    assert page.locator("#symptoms svg circle.marker").count() == 1
    page.locator("#symptoms").scroll_into_view_if_needed()
    screenshot(page, "screening-appointment")
    check_accessibility(page, "screening-appointment")
    assert violations == [], violations

    files = [IncomingFile.from_bytes(f"{s}{v}.dcm", mammogram(accession=appointment.accession_number, side=s, view=v))
             for s, v in (("R", "CC"), ("L", "CC"))]  # fmt: skip
    study = study_upload(user=technologist, files=files).study
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    read = claims.read_claim(study_id=study.pk, user=radiologist)
    reader = browser.new_page(viewport={"width": 1400, "height": 1000})
    reader_violations = _watch_policy(reader)
    sign_in(reader, live_server.url, radiologist.username, PASSWORD)
    reader.goto(f"{live_server.url}/reading/reads/{read.pk}/")
    panel = reader.locator("#mammographer-record")
    expect(panel).to_contain_text("Lump, right breast, 10 o'clock (upper outer quadrant)")
    assert panel.bounding_box()["y"] < reader.locator(".reading-workspace").bounding_box()["y"]
    screenshot(reader, "screening-reading-panel")
    check_accessibility(reader, "screening-reading-panel")
    assert reader_violations == [], reader_violations
