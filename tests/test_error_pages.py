"""Error pages: the site's layout, what happened and where to go; nothing leaked by a 500; JSON on API paths."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client

from core.error_pages import ErrorReferenceFilter
from tests.error_urls import SECRET

pytestmark = pytest.mark.urls("tests.error_urls")


def _signed_in(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _has_layout(html: str) -> bool:
    return 'class="topbar"' in html and "<footer>" in html and "/static/mammo" in html


def _no_inline_code(html: str) -> None:
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


@pytest.mark.django_db
def test_a_missing_page_has_the_layout_and_a_way_on(radiologist):
    response = _signed_in(radiologist).get("/studies/999999/")
    html = response.content.decode()
    assert response.status_code == 404
    assert _has_layout(html) and "Page not found" in html and "/studies/999999/" in html
    assert 'href="/reading/' in html  # the radiologist's navigation is there
    assert "Go to your start page" in html
    _no_inline_code(html)


@pytest.mark.django_db
def test_a_missing_page_for_someone_signed_out_offers_the_login(client):
    response = Client().get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404 and _has_layout(html) and 'href="/accounts/login/"' in html


@pytest.mark.django_db
def test_a_refused_page_says_why_and_where_to_go(technologist):
    response = _signed_in(technologist).get("/reading/")
    html = response.content.decode()
    assert response.status_code == 403 and _has_layout(html)
    assert "not allowed" in html and "study.read" in html and "administrators" in html
    assert 'href="/studies/"' in html  # the technologist's own navigation
    _no_inline_code(html)


@pytest.mark.django_db
def test_a_server_error_page_leaks_nothing_and_gives_a_reference(radiologist, caplog):
    caplog.set_level(logging.ERROR, logger="django.request")
    response = _signed_in(radiologist).get("/broken/")
    html = response.content.decode()
    assert response.status_code == 500 and _has_layout(html)
    assert "hunter2" not in html and "RuntimeError" not in html and "Traceback" not in html
    assert "rad" not in html.split("<main>")[0]  # no user details either (no request context on a 500)
    reference = re.search(r'<strong class="mono">([0-9a-f]{12})</strong>', html).group(1)
    _no_inline_code(html)
    # Django's own log line of the error carries the traceback; the console handler's filter adds the reference.
    record = next(r for r in caplog.records if r.name == "django.request" and r.status_code == 500)
    assert ErrorReferenceFilter().filter(record) and f"[reference {reference}]" in record.getMessage()
    assert record.exc_info and SECRET in str(record.exc_info[1])


@pytest.mark.django_db
def test_the_console_log_handler_carries_the_reference_filter():
    from django.conf import settings

    assert "error_reference" in settings.LOGGING["handlers"]["console"]["filters"]


@pytest.mark.django_db
def test_an_unexpected_exception_in_an_api_view_is_a_json_500_with_a_logged_reference(radiologist, caplog):
    from tests.conftest import api_client_for

    caplog.set_level(logging.ERROR)
    response = api_client_for(radiologist).get("/api/broken/")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "reference"} and SECRET not in response.content.decode()
    logged = [r for r in caplog.records if r.name == "core.api_errors"]
    assert len(logged) == 1 and body["reference"] in logged[0].getMessage()
    assert logged[0].exc_info and SECRET in str(logged[0].exc_info[1])


@pytest.mark.django_db
def test_api_and_dicomweb_paths_get_json_for_404_403_and_500(radiologist):
    api = _signed_in(radiologist)
    for path in ("/api/no-such-thing/", "/dicomweb/no-such-thing/"):
        response = api.get(path)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, path
    refused = api.get("/api/refusing/")
    assert refused.status_code == 403 and refused.json()["detail"].endswith("(study.read).")
    broken = api.get("/dicomweb/broken/")
    assert broken.status_code == 500 and set(broken.json()) == {"detail", "reference"}
    assert "hunter2" not in broken.content.decode()
    # A DRF view's own refusals stay JSON too.
    assert api.post("/api/studies/1/outcomes/", {}).json()["detail"]


@pytest.mark.django_db
def test_an_expired_form_gets_an_explanation_not_a_bare_403(radiologist):
    client = Client(enforce_csrf_checks=True)
    client.force_login(radiologist)
    response = client.post("/accounts/logout/")
    html = response.content.decode()
    assert response.status_code == 403 and _has_layout(html) and "This form has expired" in html
    _no_inline_code(html)


@pytest.mark.django_db
def test_the_login_page_has_no_inline_code(client):
    _no_inline_code(client.get("/accounts/login/").content.decode())


def test_the_site_icon_is_served_and_named_by_every_page(client):
    """Browsers ask /favicon.ico whatever a page says; it answered 404 on every page before."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("/static/favicon.svg")
    page = client.get("/accounts/login/")
    assert 'rel="icon" href="/static/favicon.svg"' in page.content.decode()
