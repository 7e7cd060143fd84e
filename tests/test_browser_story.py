"""The whole screening story in a real browser (Playwright driving Debian's chromium), one user per browser context:

1. a technologist uploads a study of two DICOMs (R CC, L CC) and watches the study page's own status updates until
   both images are analysed by the real Celery worker and the real (tiny) Keras model;
2. radiologist A claims and reads it (per-breast BI-RADS, recall, AI agree/override with a reason, a mark placed by
   clicking on the image, a distinctive comment);
3. radiologist B sees nothing of A's read in any page they can open before submitting (checked in the rendered
   HTML), reads with a different recall decision, and only then sees A's read;
4. a lead who gave neither read arbitrates the discordant study, which becomes Final;
5. an auditor finds every step in the audit trail, in the page and in the exported CSV.

Screenshots of the worklist, the reading page, the arbitration page and the audit trail are kept under
test-artifacts/screenshots/ (story-*.png).
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter

import pytest

from accounts.roles import Role
from audit.models import AuditEvent
from cases.models import BreastAssessment, Read, Study
from tests.browser import check_accessibility, screenshot
from tests.conftest import PASSWORD, make_user
from tests.dicom_factory import make_dicom

pytestmark = [pytest.mark.browser, pytest.mark.worker]
expect = pytest.importorskip("playwright.sync_api").expect
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

PATIENT = "STORY-PATIENT-4410"
A_COMMENT = "FIRST-READER-NOTE-7781"
A_REASON = "FIRST-READER-OVERRIDE-REASON-5512"
A_BIRADS = "BI-RADS 5"  # A's right breast; B gives BI-RADS 2, so this text can only come from A's read
B_COMMENT = "SECOND-READER-NOTE-3390"
LEAD_COMMENT = "ARBITRATION-NOTE-6021"
VIEWPORT = {"width": 1400, "height": 1000}
TIMEOUT = 60_000  # ms: the worker loads TensorFlow and the model on its first task


# ------------------------------------------------------------------------------------------------------- helpers


def new_user_page(browser, base_url: str, user):
    """A fresh browser context (own cookies) for one user, signed in through the login page."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.wait_for_selector(".topbar .who")  # signed in: the navigation shows who
    assert user.username in page.inner_text(".topbar .who")
    return context, page


def go(page, selector: str) -> None:
    """Click a link (or button) and wait until the next page has loaded."""
    with page.expect_navigation():
        page.click(selector)


def wait_for_images(page) -> None:
    """The page's images have loaded: the reading viewer has drawn its views (issue 13), or, on other pages, every
    <img> has loaded (so that a click lands on a laid-out image)."""
    if page.locator("[data-mammo-viewer]").count():
        page.wait_for_selector("[data-mammo-viewer][data-state=ready]")
        return
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0)"
    )


def show_ai(page, heatmaps: int) -> None:
    """The viewer's one AI switch (off when a read opens): on, the per-breast result and every heatmap are shown."""
    page.keyboard.press("a")
    expect(page.locator("[data-ai-panel]")).to_be_visible()
    expect(page.locator(".mv-cell img.mv-heatmap[src]")).to_have_count(heatmaps)


def assert_blind(html: str, where: str) -> None:
    """Nothing of the first reader's read in a page the second reader opens before submitting."""
    assert A_COMMENT not in html, where
    assert A_REASON not in html, where
    assert A_BIRADS not in html, where
    assert 'data-read-kind="first"' not in html, where
    assert 'class="mark"' not in html, where  # A's mark (a draft mark of B's own would be "mark draft")


def fill_breast(page, side: str, *, birads: int, recall: bool, ai: str | None, reason: str = "") -> None:
    """Choose BI-RADS; recall and the agreement with the AI follow from it (reading_form.js shows them)."""
    page.select_option(f'select[name="{side}-birads"]', str(birads))
    expect(page.locator(f'output[data-recall-for="{side}"]')).to_have_text(
        "recall for assessment" if recall else "routine screening (no recall)"
    )
    if ai is not None:
        words = {"agree": "Agree with the AI", "override": "Override the AI: give your reason"}[ai]
        expect(page.locator(f'output[data-agreement-for="{side}"]')).to_have_text(words)
    if reason:
        page.fill(f'textarea[name="{side}-override_reason"]', reason)


def audit_filter(page, *, study: int | str = "", action: str = "", user: str = "") -> list[dict]:
    """Use the audit page's own filter form; return the rendered rows (user name, action, object, details) of its
    first page (50 rows)."""
    page.fill("input[name=study]", str(study))
    page.fill("input[name=user]", user)
    page.select_option("select[name=action]", action)
    with page.expect_navigation():
        page.click("form.audit-filters button[type=submit]")
    page.wait_for_selector("table.audit-table")
    return page.locator("table.audit-table tbody tr").evaluate_all(
        """rows => rows.filter(r => r.cells.length === 7).map(r => ({
            user: r.cells[1].childNodes.length ? r.cells[1].childNodes[0].textContent.trim() : "",
            action: r.cells[2].innerText.trim(),
            object: r.cells[3].innerText.trim(),
            study: r.cells[4].innerText.trim(),
            details: r.cells[6].textContent.trim(),
        }))"""
    )


def audit_count(page) -> int:
    """The number of matching events, as the page states it above the table."""
    return int(re.match(r"(\d+) events?", page.inner_text("main p.hint")).group(1))


def export_csv(page, tmp_path, name: str) -> list[dict]:
    with page.expect_download() as info:
        page.click("a.button:has-text('Export as CSV')")
    download = info.value
    assert download.suggested_filename.startswith("audit-") and download.suggested_filename.endswith(".csv")
    target = tmp_path / name
    download.save_as(target)
    with open(target, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------------------- story


def test_the_whole_screening_story_in_the_browser(
    browser, live_server, celery_worker, settings, technologist, lead, auditor, active_model, tmp_path
):
    settings.READERS_SEE_AI = True  # readers read with the AI shown (the default): agreement follows from its call
    base = live_server.url
    # Names that are not part of each other: the audit page's user filter matches parts of names.
    reader_a = make_user(Role.RADIOLOGIST, "reader-ann")
    reader_b = make_user(Role.RADIOLOGIST, "reader-ben")

    # ---- 1. The technologist uploads a study of two DICOMs through the upload page. --------------------------
    study_uid = "1.2.826.0.1.3680043.8.498.44101"
    files = []
    for side in "RL":
        path = tmp_path / f"{side}_CC.dcm"
        path.write_bytes(
            make_dicom(rows=320, columns=240, laterality=side, view="CC", patient_id=PATIENT, study_uid=study_uid)
        )
        files.append(str(path))

    tech_context, page = new_user_page(browser, base, technologist)
    go(page, "nav a:has-text('Studies')")
    go(page, "a.button:has-text('Upload a study')")
    page.set_input_files("input[name=files]", files)
    with page.expect_navigation(url=re.compile(r"/studies/\d+/$")):
        page.click("form.grid-form button[type=submit]")
    study_id = int(re.search(r"/studies/(\d+)/$", page.url).group(1))
    assert "2 image(s) stored" in page.inner_text(".messages")
    # The page polls the study's status by itself (and reloads once when done): no reload from the test.
    expect(page.locator(".job-status.status-succeeded")).to_have_count(2, timeout=TIMEOUT)
    expect(page.locator("#study-status")).to_have_text("Awaiting reads", timeout=TIMEOUT)
    expect(page.locator(".thumb h3", has_text="Right CC")).to_have_count(1)
    expect(page.locator(".thumb h3", has_text="Left CC")).to_have_count(1)
    expect(page.locator(".job-result")).to_have_count(0)  # technologists do not see AI results
    assert Study.objects.get(pk=study_id).images.count() == 2
    tech_context.close()
    # The tiny test model is not validated (no call to agree with); give it test figures and a negative call on both
    # breasts, so that the readers' agreement and overrides follow from a real call.
    from inference.models import Prediction
    from tests.test_reading_pages import VALIDATED_CARD

    active_model.card = VALIDATED_CARD
    active_model.save(update_fields=["card"])
    Prediction.objects.filter(image__study_id=study_id).update(probability=0.1, threshold=0.5, label="benign")

    # ---- 2. Radiologist A claims and reads the study. --------------------------------------------------------
    a_context, page = new_user_page(browser, base, reader_a)
    go(page, "nav a:has-text('Worklist')")
    row = page.locator(f'tr[data-study="{study_id}"]')
    expect(row).to_contain_text(PATIENT)
    expect(page.locator("a.tab-current")).to_contain_text("Awaiting first read")
    screenshot(page, "story-worklist")
    check_accessibility(page, "story-worklist")
    with page.expect_navigation(url=re.compile(r"/reading/reads/\d+/$")):
        row.locator("button:has-text('Claim')").click()
    a_read_url = page.url
    expect(page.locator("h1")).to_contain_text(f"First read · {PATIENT}")
    wait_for_images(page)
    expect(page.locator("[data-ai-panel]")).to_be_hidden()  # the AI is off when the read opens
    show_ai(page, heatmaps=2)
    expect(page.locator(".ai-breasts")).to_contain_text("AI result per breast")

    right = Study.objects.get(pk=study_id).images.get(laterality="R")
    cell = page.locator(f'.mv-cell[data-image="{right.pk}"]')
    box = cell.bounding_box()
    drawn = [float(v) for v in cell.get_attribute("data-box").split(",")]  # the image's box in its cell
    assert cell.get_attribute("data-flip-horizontal") == "false"  # stored as displayed (chest wall on the right)
    page.keyboard.press("m")  # the mark tool; column 120, row 80 of the 240 x 320 original:
    page.mouse.click(box["x"] + drawn[0] + drawn[2] / 2, box["y"] + drawn[1] + drawn[3] / 4)
    expect(page.locator('.mark-status[data-side="R"]')).to_contain_text("Right CC, row ")
    expect(cell.locator(".mv-mark-draft")).to_have_count(1)
    assert float(page.input_value('input[name="R-mark_column"]')) == pytest.approx(120, abs=2)
    assert float(page.input_value('input[name="R-mark_row"]')) == pytest.approx(80, abs=2)

    fill_breast(page, "R", birads=5, recall=True, ai="override", reason=A_REASON)
    fill_breast(page, "L", birads=1, recall=False, ai="agree")
    page.check('input[name="density"][value="c"]')  # breast density, required in every read
    page.fill('textarea[name="comments"]', A_COMMENT)
    screenshot(page, "story-reading")
    check_accessibility(page, "story-reading")
    with page.expect_navigation():
        page.click("#read-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Your first read is submitted.")
    summary = page.locator('.read-summary[data-read-kind="first"]')
    expect(summary).to_contain_text(A_COMMENT)
    expect(summary).to_contain_text(A_REASON)
    expect(summary).to_contain_text(A_BIRADS)
    wait_for_images(page)
    expect(page.locator(f'.mv-cell[data-image="{right.pk}"] .mv-mark-read')).to_have_count(1)  # the stored mark
    assert page.url == a_read_url
    a_context.close()

    # ---- 3. Radiologist B: blind to A's read until B has submitted. -----------------------------------------
    b_context, page = new_user_page(browser, base, reader_b)
    go(page, "nav a:has-text('Worklist')")
    assert_blind(page.content(), "worklist")
    go(page, 'a.tab[data-queue="awaiting_second"]')
    expect(page.locator("a.tab-current")).to_contain_text("Awaiting second read")
    row = page.locator(f'tr[data-study="{study_id}"]')
    expect(row).to_contain_text(PATIENT)
    assert_blind(page.content(), "worklist, awaiting second read")

    with page.expect_navigation():
        row.locator(f"a:has-text('{PATIENT}')").click()  # the study page
    expect(page.locator("#reads")).to_contain_text("No reads you may see yet")
    assert_blind(page.content(), "study page before claiming")
    with page.expect_navigation():
        page.locator(".thumb a").first.click()  # the image page
    page.wait_for_selector("#viewer")
    assert_blind(page.content(), "image page before claiming")

    page.goto(f"{base}/reading/?queue=awaiting_second")
    with page.expect_navigation(url=re.compile(r"/reading/reads/\d+/$")):
        page.locator(f'tr[data-study="{study_id}"] button:has-text("Claim")').click()
    expect(page.locator("h1")).to_contain_text(f"Second read · {PATIENT}")
    wait_for_images(page)
    b_read_url = page.url
    assert_blind(page.content(), "reading page")
    for url in (f"{base}/studies/{study_id}/", f"{base}/images/{right.pk}/", f"{base}/reading/?queue=in_progress"):
        page.goto(url)
        page.wait_for_load_state()
        assert_blind(page.content(), f"{url} after claiming")
    first_read = Read.objects.get(study_id=study_id, kind="first")
    response = page.goto(f"{base}/reading/reads/{first_read.pk}/")  # A's read page itself is refused
    assert response.status == 403
    assert_blind(page.content(), "A's read page")

    page.goto(b_read_url)
    wait_for_images(page)
    # Discordant with A on the right breast: no recall.
    fill_breast(page, "R", birads=2, recall=False, ai="agree")
    fill_breast(page, "L", birads=1, recall=False, ai="agree")
    page.check('input[name="density"][value="c"]')  # breast density, required in every read
    page.fill('textarea[name="comments"]', B_COMMENT)
    with page.expect_navigation():
        page.click("#read-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Your second read is submitted.")
    # Now B's study page shows A's read.
    go(page, f"a:has-text('Study #{study_id}')")
    expect(page.locator("#study-status")).to_have_text("Arbitration")
    html = page.content()
    assert A_COMMENT in html and A_REASON in html and A_BIRADS in html and 'data-read-kind="first"' in html
    expect(page.locator('.read-summary[data-read-kind="first"]')).to_contain_text(A_COMMENT)
    expect(page.locator('.read-summary[data-read-kind="second"]')).to_contain_text(B_COMMENT)
    b_context.close()

    # ---- 4. A lead who gave neither read arbitrates. ----------------------------------------------------------
    lead_context, page = new_user_page(browser, base, lead)
    go(page, "nav a:has-text('Worklist')")
    go(page, 'a.tab[data-queue="arbitration"]')
    row = page.locator(f'tr[data-study="{study_id}"]')
    expect(row).to_contain_text(PATIENT)
    with page.expect_navigation(url=re.compile(rf"/reading/studies/{study_id}/arbitrate/$")):
        row.locator("a:has-text('Arbitrate')").click()
    expect(page.locator("h1")).to_contain_text(f"Arbitration · {PATIENT}")
    expect(page.locator('.reads-side-by-side .read-summary[data-read-kind="first"]')).to_contain_text(A_COMMENT)
    expect(page.locator('.reads-side-by-side .read-summary[data-read-kind="first"]')).to_contain_text(A_REASON)
    expect(page.locator('.reads-side-by-side .read-summary[data-read-kind="second"]')).to_contain_text(B_COMMENT)
    wait_for_images(page)
    show_ai(page, heatmaps=2)
    expect(page.locator(".ai-breasts")).to_contain_text("AI result per breast")
    # Both readers' marks on the same layout: A marked the right CC (label 1); B gave no mark.
    expect(page.locator(f'.mv-cell[data-image="{right.pk}"] .mv-mark-read')).to_have_count(1)
    expect(page.locator(f'.mv-cell[data-image="{right.pk}"] .mv-mark-read text')).to_have_text("1")
    screenshot(page, "story-arbitration")
    check_accessibility(page, "story-arbitration")
    fill_breast(page, "R", birads=4, recall=True, ai="override", reason="Arbitration: mass confirmed on review")
    fill_breast(page, "L", birads=1, recall=False, ai="agree")
    page.check('input[name="density"][value="c"]')  # breast density, required in every read
    page.fill('textarea[name="comments"]', LEAD_COMMENT)
    with page.expect_navigation(url=re.compile(rf"/studies/{study_id}/$")):
        page.click("#read-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Arbitration submitted; the study is final.")
    expect(page.locator("#study-status")).to_have_text("Final")
    expect(page.locator('.read-summary[data-read-kind="arbitration"]')).to_contain_text(LEAD_COMMENT)
    lead_context.close()

    study = Study.objects.get(pk=study_id)
    assert study.status == Study.Status.FINAL and study.final_recall is True
    reads = {r.kind: r for r in Read.objects.filter(study=study)}
    assert (reads["first"].reader, reads["second"].reader, reads["arbitration"].reader) == (reader_a, reader_b, lead)
    assert reads["first"].comments == A_COMMENT and reads["first"].recall is True and reads["second"].recall is False
    marked = BreastAssessment.objects.get(read=reads["first"], laterality="R")
    assert marked.ai_agreement == "override" and marked.override_reason == A_REASON
    assert marked.mark_image_id == right.pk and marked.mark_column == pytest.approx(120, abs=2)

    # ---- 5. The auditor finds every step in the trail, on the page and in the CSV export. ----------------------
    auditor_context, page = new_user_page(browser, base, auditor)
    go(page, "nav a:has-text('Audit trail')")
    rows = audit_filter(page, study=study_id)
    total = AuditEvent.objects.filter(study_id=study_id).count()
    expect(page.locator("main p.hint")).to_contain_text(f"{total} events match the filters")
    assert audit_count(page) == total
    assert rows and all(r["study"] == f"#{study_id}" for r in rows)
    screenshot(page, "story-audit")
    check_accessibility(page, "story-audit")
    exported = export_csv(page, tmp_path, "study.csv")
    assert {r["study_id"] for r in exported} == {str(study_id)} and len(exported) == total
    exported_actions = Counter(r["action"] for r in exported)

    expected = {
        "images.uploaded": 1,
        "prediction.created": 2,
        "read.claimed": 2,
        "read.submitted": 2,
        "ai.overridden": 2,  # reader A on the right breast, and the arbitrating lead
        "arbitration.submitted": 1,
    }
    seen, counts = {}, {}
    for action in [*expected, "study.images_opened", "study.status_changed"]:
        seen[action] = audit_filter(page, study=study_id, action=action)
        counts[action] = audit_count(page)
        assert seen[action] and all(r["action"] == action for r in seen[action]), action
    for action, count in expected.items():
        assert counts[action] == len(seen[action]) == count, (action, seen[action])
        assert exported_actions[action] == count, (action, exported_actions)

    assert [r["user"] for r in seen["images.uploaded"]] == [technologist.username]
    assert '"filename": "R_CC.dcm"' in seen["images.uploaded"][0]["details"]
    assert all(r["user"] == "system" for r in seen["prediction.created"])  # recorded by the worker, as the system
    assert sorted(r["user"] for r in seen["read.claimed"]) == sorted([reader_a.username, reader_b.username])
    assert sorted(r["user"] for r in seen["read.submitted"]) == sorted([reader_a.username, reader_b.username])
    assert any(A_COMMENT in r["details"] for r in seen["read.submitted"])
    overrides = {r["user"]: r["details"] for r in seen["ai.overridden"]}
    assert A_REASON in overrides[reader_a.username] and "mass confirmed on review" in overrides[lead.username]
    assert seen["arbitration.submitted"][0]["user"] == lead.username
    assert LEAD_COMMENT in seen["arbitration.submitted"][0]["details"]
    # Everyone who opened the study's images is in the trail (the images' own requests, made by the browser), once
    # per person and session: not once per thumbnail, overlay and reload.
    for viewer in (technologist, reader_a, reader_b, lead):
        rows = audit_filter(page, study=study_id, action="study.images_opened", user=viewer.username)
        assert len(rows) == 1 and rows[0]["user"] == viewer.username, (viewer.username, rows)
    assert exported_actions["study.images_opened"] == counts["study.images_opened"] == 4
    assert {r["user"] for r in exported if r["action"] == "study.images_opened"} == {
        u.username for u in (technologist, reader_a, reader_b, lead)
    }
    assert counts["study.status_changed"] == exported_actions["study.status_changed"]
    changes = [r["details"] for r in seen["study.status_changed"]]
    assert any('"to": "arbitration"' in d for d in changes), changes
    assert any('"to": "final"' in d and '"final_recall": true' in d for d in changes), changes
    exported_changes = [r["details"] for r in exported if r["action"] == "study.status_changed"]
    assert any('"to": "arbitration"' in d for d in exported_changes)
    assert any('"to": "final"' in d for d in exported_changes)

    # Sign-ins carry no study: filter by the action alone.
    logins = audit_filter(page, action="auth.login")
    users = [technologist, reader_a, reader_b, lead, auditor]
    assert {u.username for u in users} <= {r["user"] for r in logins}, logins
    assert {f"user {u.pk}" for u in users} <= {r["object"] for r in logins}
    exported_logins = export_csv(page, tmp_path, "logins.csv")
    assert {r["action"] for r in exported_logins} == {"auth.login"}
    assert {u.username for u in users} <= {r["user"] for r in exported_logins}
    auditor_context.close()
