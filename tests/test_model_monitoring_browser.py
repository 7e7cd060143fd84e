"""The monitoring page in a real browser (Debian's chromium) under the strict Content-Security-Policy: a model
whose inputs drifted (a new manufacturer after its baseline) is suspended by its stop rule; the lead sees the alert
on the worklist and the charts on the monitoring page, which passes axe-core's WCAG 2.2 AA rules. Screenshot:
model-monitoring.png."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from inference.models import StopRule
from tests.browser import check_accessibility, screenshot, sign_in
from tests.conftest import PASSWORD
from tests.test_model_monitoring import AFTER, Seeder, make_model, run

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def test_the_lead_sees_a_suspended_model_and_its_charts(browser, live_server, technologist, lead):
    model = make_model()
    seeder = Seeder(technologist)
    seeder.baseline(model)
    StopRule.objects.create(model_kind="malignancy", rule_type="unseen_equipment")
    for offset in range(3):
        seeder.day(model, AFTER + timedelta(days=offset), manufacturer="NEWCO")
    run(model, AFTER + timedelta(days=2))
    model.refresh_from_db()
    assert model.status == "suspended"

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    policy = []
    page.on("console", lambda msg: policy.append(msg.text) if "Content Security Policy" in msg.text else None)
    sign_in(page, live_server.url, lead.username, PASSWORD)
    page.goto(f"{live_server.url}/reading/")
    expect(page.locator("main")).to_contain_text("NEWCO")
    page.goto(f"{live_server.url}/models/{model.pk}/monitoring/")
    expect(page.locator("svg").first).to_be_visible()
    screenshot(page, "model-monitoring")
    check_accessibility(page, "model monitoring")
    assert policy == []
