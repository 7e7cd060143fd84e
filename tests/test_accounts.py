from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from tests.conftest import PASSWORD


@pytest.mark.django_db
def test_it_creates_a_user_with_a_role_reading_the_password_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-passphrase-42\n"))
    out = io.StringIO()
    call_command("adduser", "alice", "--role", "radiologist", "--name", "Alice Smith", stdout=out)
    user = User.objects.get(username="alice")
    assert user.role == "radiologist" and user.check_password("a-long-enough-passphrase-42")
    assert user.get_full_name() == "Alice Smith"
    assert not user.is_superuser and not user.is_staff
    user.role = "auditor"
    user.save(update_fields=["role"])
    user.refresh_from_db()
    assert user.is_staff  # the admin site (read-only audit trail) follows the role


@pytest.mark.django_db
def test_it_refuses_a_weak_password_and_an_unknown_role(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("password\n"))
    with pytest.raises(CommandError, match="too common|too short"):
        call_command("adduser", "bob", "--role", "radiologist")
    with pytest.raises(CommandError):
        call_command("adduser", "bob", "--role", "wizard")
    assert not User.objects.filter(username="bob").exists()


@pytest.mark.django_db
def test_it_signs_in_and_out_through_the_login_page(client, radiologist):
    page = client.get("/accounts/login/")
    assert b"csrfmiddlewaretoken" in page.content
    response = client.post("/accounts/login/", {"username": "rad", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 302  # home sends each role to its start page
    assert client.get("/studies/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/studies/")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_it_locks_a_name_at_an_address_after_failures_even_with_the_right_password(client, radiologist, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        response = client.post("/accounts/login/", {"username": "rad", "password": "wrong"})
        assert response.status_code == 400 and b"Please enter a correct username and password" in response.content
    response = client.post("/accounts/login/", {"username": "rad", "password": "wrong"})
    assert b"Too many failed sign-in attempts" in response.content  # the failure that locks says so
    response = client.post("/accounts/login/", {"username": "rad", "password": PASSWORD})
    assert response.status_code == 400  # refused, as any refused form: the page again with its error summary
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_token_endpoint_issues_tokens_and_shares_the_lockout(client, radiologist, settings):
    response = client.post("/api/auth/token/", {"username": "rad", "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]
    assert client.get("/api/studies/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    # Failures on the login page and at the token endpoint count together.
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        # Refused: the page again, with its error summary.
        assert client.post("/accounts/login/", {"username": "rad", "password": "nope"}).status_code == 400
    locked = client.post("/api/auth/token/", {"username": "rad", "password": "nope"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in locked.json()["detail"]
    assert client.post("/api/auth/token/", {"username": "rad", "password": PASSWORD}).status_code == 429
    page = client.post("/accounts/login/", {"username": "rad", "password": PASSWORD})
    assert b"Too many failed sign-in attempts" in page.content and "_auth_user_id" not in client.session


def test_session_and_cookie_settings_are_secure_outside_the_embedded_default(settings):
    from django.conf import settings as live

    assert live.SESSION_COOKIE_HTTPONLY and live.CSRF_COOKIE_HTTPONLY
    assert live.SESSION_COOKIE_SECURE and live.CSRF_COOKIE_SECURE  # tests run with DATABASE_URL set
    assert live.X_FRAME_OPTIONS == "DENY"


def test_the_client_address_behind_the_proxy_is_the_one_the_proxy_appended(rf, settings):
    from accounts.addresses import client_address

    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    settings.BEHIND_TLS_PROXY = False
    assert client_address(request) == "10.0.0.2"  # a client-supplied header is not trusted without the proxy
    settings.BEHIND_TLS_PROXY = True
    assert client_address(request) == "203.0.113.9"  # not the forgeable leftmost entry


def test_the_readme_role_matrix_is_the_one_the_code_enforces():
    from pathlib import Path

    from accounts.roles import matrix_markdown

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- role-matrix:start -->")[1].split("<!-- role-matrix:end -->")[0]
    assert block.strip() == matrix_markdown().strip()


@pytest.mark.django_db
def test_the_admin_login_is_the_throttled_platform_login(client, admin_user, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "admin", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORD})
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session
