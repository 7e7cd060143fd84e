"""In a real browser (Debian's chromium): the Django admin works under the strict Content-Security-Policy, and the
error pages and the login page raise no policy violations; a clinical user who opens the admin gets the 403 page."""

from __future__ import annotations

import os

import pytest

from tests.browser import check_accessibility, screenshot, sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def _watch_policy(page) -> list[str]:
    """Chromium reports each Content-Security-Policy violation on the console."""
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def test_an_administrator_uses_the_admin_under_the_policy(browser, live_server, admin_user, radiologist):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    violations = _watch_policy(page)
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url and page.inner_text("h1") == "Sign in"  # the platform's own login page
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#site-name")
    assert page.url.rstrip("/").endswith("/admin")
    check_accessibility(page, "admin index")

    page.goto(f"{live_server.url}/admin/accounts/user/")
    page.click(f"text={radiologist.username}")
    page.wait_for_selector("#id_username")
    # The admin's own scripts run: SelectFilter2.js builds the two-box widget for groups and permissions.
    page.wait_for_selector("#id_groups_from", state="attached")
    check_accessibility(page, "admin user change form")
    page.select_option("#id_role", "lead_radiologist")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    radiologist.refresh_from_db()
    assert radiologist.role == "lead_radiologist"

    for url in ("/admin/accounts/apitoken/", "/admin/accounts/failedsignin/", "/admin/accounts/user/add/"):
        page.goto(live_server.url + url)
        page.wait_for_selector("#content")
        check_accessibility(page, f"admin {url}")
    screenshot(page, "security-admin-under-csp")
    assert violations == []


def test_the_login_page_and_error_pages_raise_no_policy_violations(browser, live_server, technologist):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    violations = _watch_policy(page)
    page.goto(f"{live_server.url}/accounts/login/")
    check_accessibility(page, "sign-in page")
    sign_in(page, live_server.url, technologist.username, PASSWORD)

    response = page.goto(f"{live_server.url}/admin/")
    assert response.status == 403
    assert "administration site is for administrators and auditors" in page.inner_text("main")
    screenshot(page, "security-admin-403")
    check_accessibility(page, "403 page")

    response = page.goto(f"{live_server.url}/studies/424242/")
    assert response.status == 404 and "Page not found" in page.inner_text("main")
    assert page.is_visible("text=Go to your start page")
    screenshot(page, "security-404")
    check_accessibility(page, "404 page")
    assert violations == []
    # The watch itself works: an inline style attribute added now is refused and reported.
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<b style=\"color: red\">x</b>')")
    page.wait_for_timeout(300)
    assert len(violations) == 1 and "style-src" in violations[0]
