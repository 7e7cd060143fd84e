"""The read page in chromium at 1600 x 1000, as a radiologist meets it: the AI switch tells the server when the AI
first comes on screen (and only then), nothing in the side panel is cut off (the AI panel's research-score badge,
the read summary's Mark column), and the draft time is written like every other time on the site, whatever the
browser's own locale and time zone. Screenshots: test-artifacts/screenshots/read-page-*.png."""

from __future__ import annotations

import os
import re

import pytest

from cases.models import Read
from cases.reading import claims
from core.times import local_time_text
from tests.browser import check_accessibility, screenshot
from tests.conftest import PASSWORD, make_user
from tests.test_reading import make_study
from tests.test_reading_pages import ai_says

pytestmark = [pytest.mark.browser]
expect = pytest.importorskip("playwright.sync_api").expect
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

WIDE = {"width": 1600, "height": 1000}
READY = "[data-mammo-viewer][data-state=ready]"


def _signed_in(browser, base: str, user, **context_options):
    context = browser.new_context(viewport=WIDE, **context_options)
    context.set_default_timeout(60_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    return context, page, errors


def _clipped(page, selector: str) -> list[str]:
    """Elements under `selector` drawn (partly) outside the side panel, or inside a box that hides its overflow."""
    return page.evaluate(
        """(selector) => {
            const side = document.querySelector(".reading-side").getBoundingClientRect();
            const out = [];
            for (const element of document.querySelectorAll(selector)) {
                const box = element.getBoundingClientRect();
                if (box.width === 0) continue;
                if (box.left < side.left - 0.5 || box.right > side.right + 0.5) out.push(element.textContent.trim());
                for (let up = element.parentElement; up && up !== document.body; up = up.parentElement) {
                    if (up.scrollWidth > up.clientWidth + 1 && getComputedStyle(up).overflowX !== "visible") {
                        out.push(`${element.textContent.trim()} (in a ${up.tagName} scrolled sideways)`);
                        break;
                    }
                }
            }
            return out;
        }""",
        selector,
    )


@pytest.mark.django_db(transaction=True)
def test_the_read_page_at_1600_px(live_server, browser, settings, technologist, active_model, monkeypatch):
    monkeypatch.setattr("core.outbox.outbox_relay", lambda **kwargs: 0)  # nothing sent: analysed in-process
    settings.TIME_ZONE = "Europe/London"
    study = make_study(technologist)
    ai_says(study, active_model, positive="L", validated=False)  # a research score: the badge of item 8
    ann = make_user("radiologist", "ann")
    read = claims.read_claim(study_id=study.pk, user=ann)
    # A browser on a 12-hour clock in another zone: the page must still write the site's times.
    context, page, errors = _signed_in(browser, live_server.url, ann, locale="en-US", timezone_id="America/New_York")
    page.goto(f"{live_server.url}/reading/reads/{read.pk}/")
    page.wait_for_selector(READY)

    # ---- AI_REVEAL on_request: the AI is off and nothing is recorded until the reader switches it on. ----------
    page.wait_for_timeout(500)
    assert Read.objects.get(pk=read.pk).ai_first_shown_at is None
    expect(page.locator("[data-ai-panel]")).to_be_hidden()
    page.keyboard.press("a")
    expect(page.locator("[data-ai-panel]")).to_be_visible()
    page.wait_for_selector("[data-mammo-viewer][data-ai-reveal-recorded=true]")
    revealed = Read.objects.get(pk=read.pk).ai_first_shown_at
    assert revealed is not None
    page.keyboard.press("a")
    page.keyboard.press("a")  # off and on again: the first reveal stays
    page.wait_for_timeout(300)
    assert Read.objects.get(pk=read.pk).ai_first_shown_at == revealed

    # ---- Nothing in the side panel is cut off at 1600 px: the AI panel's research-score badge. -----------------
    expect(page.locator("[data-ai-panel] .label-research")).to_have_count(2)  # one per breast
    screenshot(page, "read-page-ai-panel-1600")
    check_accessibility(page, "read-page-ai-panel-1600")
    assert _clipped(page, "[data-ai-panel] .label-research, [data-ai-panel] td, [data-ai-panel] th") == []

    # ---- The draft time: the site's zone, 24-hour clock (not "06:10:04 PM" in New York). ------------------------
    page.select_option('select[name="R-birads"]', "1")
    page.select_option('select[name="L-birads"]', "2")
    page.wait_for_selector("[data-draft-status]:has-text('Draft saved')")
    text = page.text_content("[data-draft-status]")
    saved = Read.objects.get(pk=read.pk).draft_saved_at
    assert text == f"Draft saved {local_time_text(saved, seconds=True)}", text
    assert re.fullmatch(r"Draft saved \d\d:\d\d:\d\d", text) and "M" not in text
    assert page.text_content("footer .time-zone") == "Times are Europe/London, 24-hour clock."

    # ---- A mark, the read submitted: the read summary's Mark column is whole. ------------------------------------
    page.keyboard.press("m")
    cell = page.locator('.mv-cell[data-cell="current-RCC"]')
    box = cell.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5)
    expect(page.locator('input[name="R-mark_image"]')).not_to_have_value("")
    page.check('input[name="density"][value="b"]')  # breast density, required in every read
    with page.expect_navigation():
        page.click("#read-form button[type=submit]:not([value])")
    expect(page.locator(".read-summary")).to_contain_text("BI-RADS 2")
    screenshot(page, "read-page-summary-1600")
    check_accessibility(page, "read-page-summary-1600")
    marks = page.locator(".read-summary tbody td:last-child").all_inner_texts()
    assert any(re.search(r"row \d+, column \d+", mark) for mark in marks), marks
    assert _clipped(page, ".read-summary td, .read-summary th") == []
    assert errors == []
    context.close()
