"""Transport and browser security: HTTPS-only by default behind the TLS proxy (HSTS, secure cookies, redirect),
the Content-Security-Policy on every response, and the admin site for signed-in users of every role."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import PASSWORD, REPO

EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "connect-src": "'self'",
    "worker-src": "'self' blob:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def _policy(header: str) -> dict:
    directives = [part.strip().split(" ", 1) for part in header.split(";") if part.strip()]
    return {name: value for name, value in directives}


# Runs in a fresh process, because these settings are read from the environment when Django starts.
_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
https = {"HTTP_X_FORWARDED_PROTO": "https", "REMOTE_ADDR": "172.18.0.2"}
client = Client()
login = client.get("/accounts/login/", **https)
plain = client.get("/accounts/login/", REMOTE_ADDR="172.18.0.2")
health = client.get("/healthz", REMOTE_ADDR="172.18.0.2")
print(json.dumps({
    "login_status": login.status_code,
    "hsts": login.get("Strict-Transport-Security"),
    "csrf_cookie_secure": bool(login.cookies["csrftoken"]["secure"]),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location"),
    "health_status": health.status_code,
}))
"""


def _probe(tmp_path, **env) -> dict:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mammo_platform.settings",
        "ALLOWED_HOSTS": "testserver",
        "MAMMO_VAR_DIR": str(tmp_path),
        **env,
    }
    for name, value in env.items():
        if value is None:
            environment.pop(name)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_behind_the_tls_proxy_https_is_enforced_by_default(tmp_path):
    seen = _probe(tmp_path, BEHIND_TLS_PROXY="true")
    assert seen["login_status"] == 200
    assert seen["hsts"] == "max-age=31536000"
    assert seen["csrf_cookie_secure"] and seen["session_cookie_secure"]
    assert seen["plain_status"] == 301 and seen["plain_location"] == "https://testserver/accounts/login/"
    assert seen["health_status"] != 301  # container probes speak plain HTTP inside the network


def test_hsts_include_subdomains_and_max_age_are_configurable(tmp_path):
    seen = _probe(tmp_path, BEHIND_TLS_PROXY="true", SECURE_HSTS_SECONDS="600", SECURE_HSTS_INCLUDE_SUBDOMAINS="true")
    assert seen["hsts"] == "max-age=600; includeSubDomains"


def test_the_embedded_default_behind_the_proxy_has_secure_cookies_too(tmp_path):
    # Embedded (no DATABASE_URL) used to mean plain-HTTP cookies even when BEHIND_TLS_PROXY was set.
    seen = _probe(tmp_path, BEHIND_TLS_PROXY="true", DATABASE_URL=None, CELERY_BROKER_URL=None, SECRET_KEY=None)
    assert seen["session_cookie_secure"] and seen["csrf_cookie_secure"] and seen["hsts"] == "max-age=31536000"


def test_without_the_proxy_there_is_no_hsts(tmp_path):
    seen = _probe(tmp_path, BEHIND_TLS_PROXY="false")
    assert seen["hsts"] is None and seen["plain_status"] == 200


# ---- Content-Security-Policy -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_policy(client, radiologist, admin_user):
    responses = {"login": client.get("/accounts/login/"), "not found": client.get("/nowhere/")}
    client.force_login(radiologist)
    responses["worklist"] = client.get("/reading/")
    responses["refused"] = client.get("/audit/")
    responses["api"] = client.get("/api/studies/")
    client.force_login(admin_user)
    responses["admin"] = client.get("/admin/")
    for name, response in responses.items():
        assert _policy(response["Content-Security-Policy"]) == EXPECTED_CSP, name
    assert [r.status_code for r in responses.values()] == [200, 404, 200, 403, 200, 200]


def _inline_code(html: str) -> list[str]:
    found = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", html)
    found += re.findall(r"\sstyle=\"[^\"]*\"", html) + re.findall(r"\son[a-z]+=\"", html)
    return found


@pytest.mark.django_db
def test_the_admin_pages_render_without_inline_code(client, admin_user, auditor, radiologist):
    from tests.conftest import api_client_for

    api_client_for(radiologist)
    client.force_login(admin_user)
    pages = [
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{radiologist.pk}/change/",
        f"/admin/accounts/user/{radiologist.pk}/password/",
        "/admin/accounts/user/add/",
        "/admin/accounts/apitoken/",
        "/admin/accounts/failedsignin/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert _inline_code(response.content.decode()) == [], url
    client.force_login(auditor)
    response = client.get("/admin/audit/auditevent/")
    assert response.status_code == 200 and _inline_code(response.content.decode()) == []


# ---- the admin site and the roles that do not use it ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["technologist", "radiologist", "lead"])
def test_clinical_roles_get_a_403_page_from_the_admin_not_a_redirect_loop(client, request, role_fixture):
    client.force_login(request.getfixturevalue(role_fixture))
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) == 1  # /admin/ -> /admin/login/?next=/admin/, which refuses
    html = response.content.decode()
    assert 'class="topbar"' in html and "administration site is for administrators and auditors" in html


@pytest.mark.django_db
def test_signing_in_through_the_admin_as_a_clinical_role_ends_on_the_403_page(client, radiologist):
    response = client.post("/admin/login/?next=/admin/", {"username": "rad", "password": PASSWORD}, follow=True)
    assert response.status_code == 403 and len(response.redirect_chain) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["admin_user", "auditor"])
def test_administrators_and_auditors_reach_the_admin(client, request, role_fixture):
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/login/").status_code == 302  # already signed in: on to the admin


@pytest.mark.django_db
def test_the_admin_sends_signed_out_users_to_the_platform_login(client, admin_user):
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200 and b'name="password"' in response.content
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORD, "next": "/admin/"}, follow=True
    )
    assert response.status_code == 200 and response.redirect_chain[-1][0] == "/admin/"
