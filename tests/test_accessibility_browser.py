"""Accessibility in chromium: axe-core's WCAG 2.2 AA rules on every kind of page, and the error summary of a refused
form (focus moves to it; each of its links moves focus to the field)."""

from __future__ import annotations

import os

import pytest

from accounts.roles import Role
from tests.browser import accessibility_violations, check_accessibility, sign_in, sign_out
from tests.conftest import PASSWORD, make_user

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

VIEWPORT = {"width": 1400, "height": 1000}


def test_the_check_fails_on_a_page_that_breaks_the_rules(browser):
    page = browser.new_page()
    page.set_content(
        "<html><body><img src='x.png'><a href='/'></a>"
        "<p style='color:#aaa;background:#fff'>faint</p><input type='text'></body></html>"
    )
    found = {v["id"] for v in accessibility_violations(page)}
    assert {"image-alt", "link-name", "color-contrast", "html-has-lang", "label"} <= found
    with pytest.raises(AssertionError, match="image-alt"):
        check_accessibility(page, "broken")
    page.set_content("<html lang='en'><head><title>Fine</title></head><body><main><h1>Fine</h1></main></body></html>")
    check_accessibility(page, "fine")


def _pages_for(role, study, image, read, appointment):
    common = ["/", "/studies/", f"/studies/{study.pk}/", "/api/docs/", "/studies/424242/"]
    return {
        Role.TECHNOLOGIST: [*common, "/studies/new/", f"/studies/{study.pk}/", f"/images/{image.pk}/", "/clinic/",
                            "/clinic/appointments/new/", f"/clinic/appointments/{appointment.pk}/", "/clinic/held/",
                            "/letters/"],
        Role.RADIOLOGIST: [*common, "/reading/", f"/reading/reads/{read.pk}/", "/reading/statistics/"],
        Role.LEAD_RADIOLOGIST: [*common, "/reading/?queue=arbitration", "/performance/", "/performance/strategies/",
                                "/models/", "/reading/statistics/", "/letters/", "/letters/templates/",
                                "/letters/templates/technical_recall/"],
        Role.AUDITOR: [*common, "/audit/", "/operations/", "/reading/statistics/"],
        Role.ADMIN: ["/", "/models/", "/models/import/", "/admin/"],
    }[role]  # fmt: skip


def test_every_kind_of_page_passes_wcag_22_aa(browser, live_server, technologist):
    from cases.reading import claims
    from tests.screening_factory import book
    from tests.test_reading import make_study

    study = make_study(technologist)
    image = study.images.first()
    radiologist = make_user(Role.RADIOLOGIST, "ann")
    read = claims.read_claim(study_id=study.pk, user=radiologist)
    appointment = book(technologist)
    users = {Role.TECHNOLOGIST: technologist, Role.RADIOLOGIST: radiologist}
    for role in (Role.LEAD_RADIOLOGIST, Role.AUDITOR, Role.ADMIN):
        users[role] = make_user(role)

    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{live_server.url}/accounts/login/")
    failures = []

    def check(name):
        try:
            check_accessibility(page, name)
        except AssertionError as error:
            failures.append(str(error))

    check("sign-in page")
    page.fill("input[name=username]", "nobody")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    check("refused sign-in")
    for role, user in users.items():
        sign_in(page, live_server.url, user.username, PASSWORD)
        for url in _pages_for(role, study, image, read, appointment):
            page.goto(live_server.url + url)
            page.wait_for_load_state("networkidle")
            if url == "/api/docs/":
                page.wait_for_selector("#swagger-ui[data-state=ready]", timeout=60_000)
                page.locator(".opblock-summary-path", has_text="/api/worklist/").first.click()
                page.wait_for_selector(".opblock.is-open .responses-wrapper")
            check(f"{url} as {role}")
        if role == Role.TECHNOLOGIST:  # a refused upload: no files
            page.goto(f"{live_server.url}/studies/new/")
            page.click("main form button[type=submit]")
            page.wait_for_load_state()
            check("refused upload")
        if role == Role.LEAD_RADIOLOGIST:  # a refused outcome: no breast, no outcome
            page.goto(f"{live_server.url}/studies/{study.pk}/")
            page.click("#outcomes form button[type=submit]")
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.activeElement.classList.contains('error-summary')")
            check("refused outcome")
        if role == Role.RADIOLOGIST:  # a refused read: no density, no BI-RADS
            page.goto(f"{live_server.url}/reading/reads/{read.pk}/")
            page.click("#read-form button[type=submit]")
            page.wait_for_load_state("networkidle")
            assert page.locator(".error-summary").count() == 1
            check("refused read")
        sign_out(page) if page.locator("form[action$='/accounts/logout/'] button").count() else None
    assert not failures, "\n\n".join(failures)


def test_a_refused_form_moves_focus_to_its_summary_and_from_a_link_to_the_field(browser, live_server, technologist):
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live_server.url, technologist.username, PASSWORD)
    page.goto(f"{live_server.url}/clinic/appointments/new/")
    page.fill("#id_family_name", "Jones")
    page.fill("#id_patient_id", "")
    with page.expect_navigation() as navigation:
        page.click("main form button[type=submit]")
    assert navigation.value.status == 400
    summary = page.locator(".error-summary")
    assert summary.get_attribute("role") == "alert"
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    check_accessibility(page, "refused booking")
    link = summary.locator("a[href='#id_patient_id']")
    link.click()
    assert page.evaluate("document.activeElement.id") == "id_patient_id"
    described = page.get_attribute("#id_patient_id", "aria-describedby")
    assert "id_patient_id_error" in described.split()
    assert page.locator("#id_patient_id_error").inner_text().strip()
    # The sign-in page, refused with its fields empty, the same.
    sign_out(page)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    page.locator(".error-summary a[href='#id_password']").click()
    assert page.evaluate("document.activeElement.id") == "id_password"
    check_accessibility(page, "refused sign-in, empty")
