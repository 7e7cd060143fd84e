"""In a real browser (Debian's chromium) under the strict Content-Security-Policy: a lead confirms a final study's
result from its page, the clinic prints the letter from the letter list (one PDF), and a wording with a typo comes
back with its error summary. Screenshots: letters-*.png."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from pypdf import PdfReader

from cases.models import Letter
from tests.browser import check_accessibility, screenshot, sign_in, sign_out
from tests.conftest import PASSWORD, make_user
from tests.test_result_letters import _final

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def test_a_lead_confirms_the_result_and_the_clinic_prints_the_letter(browser, live_server, technologist, lead):
    readers = make_user("radiologist", "ann"), make_user("radiologist", "ben")
    study = _final(technologist, readers, tag="61", density=("c", "c"))
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    policy = []
    page.on("console", lambda msg: policy.append(msg.text) if "Content Security Policy" in msg.text else None)
    sign_in(page, live_server.url, lead.username, PASSWORD)
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    expect(page.locator("#screening-outcome .result")).to_contain_text("Routine recall")
    with page.expect_navigation():
        page.click("#confirm-result button[type=submit]")
    expect(page.locator("#result-confirmed")).to_contain_text("Routine recall, by")
    letter = Letter.objects.get()
    expect(page.locator("#screening-outcome")).to_contain_text(f"{letter.reference} (PDF)")
    screenshot(page, "letters-study-confirmed")
    check_accessibility(page, "letters-study-confirmed")

    page.goto(f"{live_server.url}/letters/templates/routine_recall/")
    page.fill("#id_body", "Dear {{ nmae }},\n\nAll clear.")
    with page.expect_navigation():
        page.click("#template-form button[type=submit]")
    expect(page.locator(".error-summary")).to_contain_text("{{ nmae }}")
    expect(page.locator(".error-summary")).to_be_focused()
    screenshot(page, "letters-wording-refused")
    check_accessibility(page, "letters-wording-refused")
    page.goto(f"{live_server.url}/letters/templates/")
    check_accessibility(page, "letters-templates")
    sign_out(page)

    sign_in(page, live_server.url, technologist.username, PASSWORD)
    page.click("nav a:has-text('Letters')")
    expect(page.locator("#letters tbody")).to_contain_text(letter.reference)
    screenshot(page, "letters-list")
    check_accessibility(page, "letters-list")
    page.check(f"#choose-{letter.pk}")
    with page.expect_download() as download:
        page.click("#print-letters button[name=selected]")
    pdf = Path(download.value.path()).read_bytes()
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 1 and letter.reference in pages[0].extract_text()
    assert "Your breast tissue is dense" in " ".join(pages[0].extract_text().split())
    letter.refresh_from_db()
    assert letter.printed_by == technologist
    assert policy == []
