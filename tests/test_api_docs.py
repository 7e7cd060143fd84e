"""/api/docs/: the API's interactive documentation (Swagger UI from drf-spectacular-sidecar), behind the site's
sign-in, drawn in chromium under the strict Content-Security-Policy with nothing fetched from outside the site."""

from __future__ import annotations

import os
import re

import pytest

from tests.browser import check_accessibility, screenshot
from tests.conftest import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


@pytest.mark.django_db
def test_the_docs_page_asks_for_the_sites_sign_in(client, radiologist):
    anonymous = client.get("/api/docs/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    client.force_login(radiologist)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html and " style=" not in html
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle" in html
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert "unsafe-inline" not in page["Content-Security-Policy"]


@pytest.mark.browser
def test_swagger_ui_draws_the_api_under_the_strict_csp_and_offline(live_server, browser, radiologist):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    problems, outside = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None)
    page.goto(f"{live_server.url}/api/docs/")
    assert "/accounts/login/" in page.url  # signed out: the site's sign-in first
    page.fill("input[name=username]", radiologist.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert page.url.endswith("/api/docs/")
    page.wait_for_selector("#swagger-ui[data-state=ready]", timeout=60_000)
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/studies/" in paths and "/api/worklist/" in paths, paths
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("Mammography screening platform API")
    # One operation opened, as a person would, shows its parameters and responses.
    page.locator(".opblock-summary-path", has_text="/api/worklist/").first.click()
    page.wait_for_selector(".opblock.is-open .responses-wrapper")
    screenshot(page, "api-docs")
    check_accessibility(page, "api-docs")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    assert outside == [], outside
    context.close()
