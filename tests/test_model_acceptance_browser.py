"""The local acceptance test in a real browser (Debian's chromium) under the strict Content-Security-Policy: a lead
opens a shadow model's acceptance page, a protocol with its period backwards comes back with its error summary, the
lead locks a protocol, computes its report on the site's screens (the hand-worked set of test_model_acceptance),
signs it off, and the inventory says the model is accepted at this site. Every page passes axe-core's WCAG 2.2 AA
rules. Screenshots: model-acceptance-*.png."""

from __future__ import annotations

import os

import pytest

from inference.models import AcceptanceReport
from tests.browser import check_accessibility, screenshot, sign_in
from tests.conftest import PASSWORD
from tests.test_model_acceptance import site  # noqa: F401  (the fixture: six screens with outcomes, a shadow model)

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def _fill(page, values: dict) -> None:
    for name, value in values.items():
        page.fill(f"#id_{name}", str(value))


def test_a_lead_runs_and_signs_off_the_local_acceptance_test(browser, live_server, site, lead):  # noqa: F811
    version = site["version"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    policy = []
    page.on("console", lambda msg: policy.append(msg.text) if "Content Security Policy" in msg.text else None)
    sign_in(page, live_server.url, lead.username, PASSWORD)
    page.goto(f"{live_server.url}/models/{version.pk}/acceptance/")
    check_accessibility(page, "acceptance page")
    criteria = {"min_cancers": 2, "min_screens": 6, "min_auc_lower": 0, "sensitivity_margin": 0.5,
                "min_specificity": 0.75, "max_recall_rate": 0.34, "n_bootstrap": 200}  # fmt: skip
    _fill(page, {"period_start": "2025-12-31", "period_end": "2025-01-01", **criteria})
    with page.expect_navigation():
        page.click("#protocol-form button[type=submit]")
    expect(page.locator(".error-summary")).to_contain_text("The period ends before it starts")
    expect(page.locator(".error-summary")).to_be_focused()
    check_accessibility(page, "refused protocol")
    _fill(page, {"period_start": "2025-01-01", "period_end": "2025-12-31", **criteria})
    with page.expect_navigation():
        page.click("#protocol-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("The protocol is locked")
    with page.expect_navigation():
        page.click("button:has-text('Compute the report')")
    expect(page.locator(".messages")).to_contain_text("Pass")
    report = AcceptanceReport.objects.get()
    expect(page.locator(f"#report-{report.pk}")).to_contain_text("0.875")  # the AUC worked out by hand: 7/8
    screenshot(page, "model-acceptance-report")
    check_accessibility(page, "acceptance report")
    with page.expect_navigation():
        page.click("button:has-text('Sign off: accept this model at this site')")
    expect(page.locator(".messages")).to_contain_text("is accepted at this site")
    version.refresh_from_db()
    assert version.status == "accepted"
    page.goto(f"{live_server.url}/models/")
    expect(page.locator("main")).to_contain_text("Accepted at this site")
    screenshot(page, "model-acceptance-inventory")
    check_accessibility(page, "inventory after acceptance")
    assert policy == []
