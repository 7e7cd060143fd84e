"""The reading and arbitration pages with the viewer, in chromium, on a real-size four-view exam uploaded through the
platform (4,600 x 2,800, 16-bit RLE DICOM, tests/viewer_exam.py) with an 8-bit PNG prior of the same woman, analysed
by the real (tiny) model. Checked by reading pixels and positions: the mirrored hanging, window/level on the
original values, synchronised zoom and pan, the AI switch, marks landing on the original pixels after zoom and pan
(and shown to the arbitrator on the same layout), the prior beside the current exam, the audit trail, and the time
and bytes to draw the exam. Screenshots: test-artifacts/screenshots/reading-viewer-*.png."""

from __future__ import annotations

import json
import os
import re
from datetime import date

import pytest

from accounts.roles import Role
from audit.models import AuditEvent
from cases.models import BreastAssessment, Read, Study
from cases.studies.ingestion import IncomingFile, study_upload
from tests.browser import ARTIFACTS, check_accessibility, screenshot
from tests.conftest import PASSWORD, make_user
from tests.test_reading_pages import analyse
from tests.viewer_checks import (
    FOUR,
    assert_hung_mirrored,
    cell,
    cell_keys,
    cell_rect,
    coloured_fraction,
    drawn_box,
    find_dot,
    linear_window,
    patch_greys,
    pixels,
    settle,
)
from tests.viewer_exam import COLUMNS, PATCH_A, PATCH_B, PRIOR_COLUMNS, PRIOR_DOTS, WINDOWS, current_exam, prior_exam

pytestmark = [pytest.mark.browser]
expect = pytest.importorskip("playwright.sync_api").expect
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

PATIENT = "VIEWER-EXAM-1"
VIEWPORT = {"width": 1400, "height": 900}
READY = "[data-mammo-viewer][data-state=ready]"


def signed_in(browser, base: str, user):
    context = browser.new_context(viewport=VIEWPORT)
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


def open_read(page, url: str | None = None) -> dict:
    """Open (or, without url, finish opening) a reading page; the viewer's figures for this opening."""
    if url:
        page.goto(url)
    page.wait_for_selector(READY)
    settle(page)
    root = "[data-mammo-viewer]"
    return {
        "first_draw_ms": int(page.get_attribute(root, "data-first-draw-ms")),
        "pixel_bytes": int(page.get_attribute(root, "data-pixel-bytes")),
        "renderer": page.get_attribute(root, "data-renderer"),
        "steps": json.loads(page.get_attribute(root, "data-steps")),
    }


def mark_at_dot(page, key: str) -> None:
    rect = cell_rect(page, key)
    dot = find_dot(pixels(page, key))
    assert dot is not None, key
    page.mouse.click(rect["x"] + dot[0], rect["y"] + dot[1])


def centre_of(locator, rect) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2 - rect["x"], box["y"] + box["height"] / 2 - rect["y"]


def fill_breast(page, side: str, *, birads: int, recall: bool) -> None:
    """Choose BI-RADS: recall follows from it (and the agreement with the AI, here not applicable: the tiny test
    model is not validated)."""
    page.select_option(f'select[name="{side}-birads"]', str(birads))
    expected = "recall for assessment" if recall else "routine screening (no recall)"
    assert page.text_content(f'output[data-recall-for="{side}"]') == expected


def test_reading_a_real_size_exam_with_its_prior(live_server, browser, technologist, lead, active_model, monkeypatch):
    monkeypatch.setattr("core.outbox.outbox_relay", lambda **kwargs: 0)  # nothing sent: analysed in-process below
    base = live_server.url
    exam = {image.slot: image for image in current_exam(patient_id=PATIENT)}
    prior = {image.slot: image for image in prior_exam()}
    earlier = study_upload(
        user=technologist,
        files=[IncomingFile.from_bytes(image.filename, image.data) for image in prior.values()],
        patient_id=PATIENT,
        study_date=date(2022, 3, 1),
    ).study
    result = study_upload(
        user=technologist, files=[IncomingFile.from_bytes(image.filename, image.data) for image in exam.values()]
    )
    study = result.study
    assert len(result.accepted) == 4 and earlier.images.count() == 4
    analyse(study)
    study.refresh_from_db()
    assert study.status == Study.Status.AWAITING_READS and study.patient == earlier.patient
    image_of = {f"{i.laterality}{i.view}": i for i in study.images.all()}

    # ---- Reader A claims the study from the worklist; the viewer opens on the four views. ---------------------
    ann, ben = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")
    context, page, errors = signed_in(browser, base, ann)
    page.goto(f"{base}/reading/")
    with page.expect_navigation(url=re.compile(r"/reading/reads/\d+/$")):
        page.locator(f'tr[data-study="{study.pk}"] button:has-text("Claim")').click()
    read_url = page.url
    first = open_read(page)  # a fresh browser: the viewer's code downloaded and compiled too
    prepared = open_read(page, read_url)  # a later opening in the same tab: the code cached, the pixels not
    assert cell_keys(page) == FOUR
    assert prepared["pixel_bytes"] == first["pixel_bytes"] > 0
    assert_hung_mirrored(page)
    assert {key: cell(page, key).get_attribute("data-flip-source") for key in FOUR} == {
        "current-RCC": "PatientOrientation",
        "current-LCC": "PatientOrientation",
        "current-RMLO": "PatientOrientation",
        "current-LMLO": "pixels",
    }
    screenshot(page, "reading-viewer-four-views")
    check_accessibility(page, "reading-viewer-four-views")
    speed = {"first_opening": first, "later_opening": prepared, "images": "4 x 4,600 x 2,800 16-bit RLE DICOM"}
    (ARTIFACTS.parent / "reading-viewer-speed.json").write_text(json.dumps(speed, indent=2))
    print(f"\nreading viewer: four views drawn {first['first_draw_ms']} ms after navigation in a fresh browser, "
          f"{prepared['first_draw_ms']} ms on the next opening; {prepared['pixel_bytes'] / 1e6:.1f} MB of pixels; "
          f"{prepared['renderer']} rendering")  # fmt: skip

    # ---- The AI: off when the read opens, one switch for every view and the per-breast result. ----------------
    expect(page.locator("[data-ai-panel]")).to_be_hidden()
    assert page.locator(".mv-heatmap[src]").count() == 0
    assert all(coloured_fraction(pixels(page, key)) == 0 for key in FOUR)
    page.keyboard.press("a")
    expect(page.locator("[data-ai-panel]")).to_be_visible()
    expect(page.locator("[data-ai-panel]")).to_contain_text("AI result per breast")
    expect(page.locator("[data-ai-panel] .ai-note")).to_contain_text("Not validated")  # the tiny test model
    expect(page.locator(".mv-heatmap[src]")).to_have_count(4)
    page.wait_for_timeout(500)
    settle(page)
    assert max(coloured_fraction(pixels(page, key)) for key in FOUR) > 0.001  # the heatmaps are drawn
    screenshot(page, "reading-viewer-ai")
    check_accessibility(page, "reading-viewer-ai")
    page.keyboard.press("a")
    settle(page)
    assert all(coloured_fraction(pixels(page, key)) == 0 for key in FOUR)

    # ---- Window/level on the original 16-bit values: the DICOM's narrow window parts 20,000 from 20,040. --------
    page.keyboard.press("v")
    settle(page)
    (_, _), (narrow_c, narrow_w) = WINDOWS
    for key in FOUR:
        a, b = patch_greys(page, key)
        assert a == pytest.approx(linear_window(PATCH_A, narrow_c, narrow_w), abs=3), key
        assert b == pytest.approx(linear_window(PATCH_B, narrow_c, narrow_w), abs=3), key
    page.keyboard.press("r")
    settle(page)

    # ---- Zoom on the RCC's dot and pan: every view follows, the left breast in mirror. -------------------------
    rcc = cell_rect(page, "current-RCC")
    dot = find_dot(pixels(page, "current-RCC"))
    page.mouse.move(rcc["x"] + dot[0], rcc["y"] + dot[1])
    for _ in range(6):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(60)
    page.mouse.move(rcc["x"] + 100, rcc["y"] + 100)
    page.mouse.down(button="middle")
    page.mouse.move(rcc["x"] + 70, rcc["y"] + 130, steps=4)
    page.mouse.up(button="middle")
    settle(page)
    dots = {key: find_dot(pixels(page, key)) for key in FOUR}
    width = rcc["width"]
    assert dots["current-LCC"] == pytest.approx((width - dots["current-RCC"][0], dots["current-RCC"][1]), abs=2.5)
    assert dots["current-LMLO"] == pytest.approx((width - dots["current-RMLO"][0], dots["current-RMLO"][1]), abs=2.5)
    zoom = {float(cell(page, key).get_attribute("data-zoom")) for key in FOUR}
    assert len(zoom) == 1 and zoom.pop() == pytest.approx(1.15**6, rel=0.01)
    screenshot(page, "reading-viewer-zoomed")
    check_accessibility(page, "reading-viewer-zoomed")

    # ---- Marks on the dots of the zoomed, panned, flipped views land on the original pixels. -------------------
    page.keyboard.press("m")
    mark_at_dot(page, "current-LCC")  # stored upside down
    mark_at_dot(page, "current-RMLO")  # stored as displayed
    scale = drawn_box(page, "current-LCC")["width"] / COLUMNS  # screen pixels per original pixel
    tolerance = 2 / scale
    for side, slot in (("L", "LCC"), ("R", "RMLO")):
        assert page.input_value(f'input[name="{side}-mark_image"]') == str(image_of[slot].pk)
        assert float(page.input_value(f'input[name="{side}-mark_row"]')) == pytest.approx(
            exam[slot].dot[0], abs=tolerance
        )
        assert float(page.input_value(f'input[name="{side}-mark_column"]')) == pytest.approx(
            exam[slot].dot[1], abs=tolerance
        )
    screenshot(page, "reading-viewer-marks")
    check_accessibility(page, "reading-viewer-marks")

    # ---- The prior hangs beside the current exam, current pair still back to back. ----------------------------
    page.keyboard.press("f")
    page.keyboard.press("c")
    expect(page.locator('[data-action="compare"][aria-pressed="true"]')).to_have_count(1)
    settle(page)
    assert cell_keys(page)[:4] == ["prior-RCC", "current-RCC", "current-LCC", "prior-LCC"]
    assert "prior · 2022-03-01" in cell(page, "prior-LCC").inner_text()
    assert_hung_mirrored(page, [k.replace("current", "prior") for k in FOUR], columns=PRIOR_COLUMNS, dots=PRIOR_DOTS)
    assert_hung_mirrored(page)
    screenshot(page, "reading-viewer-prior")
    check_accessibility(page, "reading-viewer-prior")
    page.keyboard.press("c")
    page.wait_for_selector(READY)

    fill_breast(page, "R", birads=1, recall=False)
    fill_breast(page, "L", birads=4, recall=True)
    page.check('input[name="density"][value="b"]')  # breast density, required in every read
    with page.expect_navigation():
        page.click("#read-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Your first read is submitted.")
    first_read = Read.objects.get(study=study, kind="first")
    assert first_read.ai_reveal == "on_request"
    marked = {a.laterality: a for a in BreastAssessment.objects.filter(read=first_read)}
    assert marked["L"].mark_image_id == image_of["LCC"].pk
    assert marked["L"].mark_row == pytest.approx(exam["LCC"].dot[0], abs=tolerance)
    opened = AuditEvent.objects.filter(action="study.images_opened", study_id=study.pk, actor_id=ann.pk)
    assert opened.count() == 1 and opened.get().details["first_kind"] == "pixels"
    assert AuditEvent.objects.filter(action="study.images_opened", study_id=earlier.pk, actor_id=ann.pk).exists()
    assert errors == []
    context.close()

    # ---- Reader B disagrees; the lead arbitrates with both readers' marks on the same layout. ------------------
    context, page, errors = signed_in(browser, base, ben)
    page.goto(f"{base}/reading/?queue=awaiting_second")
    with page.expect_navigation(url=re.compile(r"/reading/reads/\d+/$")):
        page.locator(f'tr[data-study="{study.pk}"] button:has-text("Claim")').click()
    page.wait_for_selector(READY)
    assert page.locator(".mv-mark-read").count() == 0  # blind to A's marks
    page.keyboard.press("m")
    mark_at_dot(page, "current-RCC")
    fill_breast(page, "R", birads=4, recall=True)
    fill_breast(page, "L", birads=1, recall=False)
    page.check('input[name="density"][value="b"]')
    with page.expect_navigation():
        page.click("#read-form button[type=submit]")
    assert errors == []
    context.close()
    study.refresh_from_db()
    assert study.status == Study.Status.ARBITRATION

    context, page, errors = signed_in(browser, base, lead)
    page.goto(f"{base}/reading/studies/{study.pk}/arbitrate/")
    page.wait_for_selector(READY)
    settle(page)
    labels = {}
    for key in FOUR:
        rect = cell_rect(page, key)
        for mark in page.locator(f".mv-cell[data-cell='{key}'] .mv-mark-read").all():
            labels[key] = mark.locator("text").text_content()
            centre = centre_of(mark.locator("circle"), rect)
            assert centre == pytest.approx(find_dot(pixels(page, key)), abs=2.5), key  # on the dot it was put on
    assert labels == {"current-LCC": "1", "current-RMLO": "1", "current-RCC": "2"}
    screenshot(page, "reading-viewer-arbitration")
    check_accessibility(page, "reading-viewer-arbitration")
    assert errors == []
    context.close()
