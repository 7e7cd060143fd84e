"""API tokens (accounts.tokens on django-rest-knox): a new token at each sign-in, stored hashed, expiring, revoked
by the owner (API) or an administrator (admin), all revoked by a password change; each issue and revocation
audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.conftest import PASSWORD


def _token(username: str = "rad", password: str = PASSWORD) -> dict:
    response = APIClient().post("/api/auth/token/", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def _api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _works(token: str) -> bool:
    status = _api(token).get("/api/studies/").status_code
    assert status in (200, 401), status
    return status == 200


@pytest.mark.django_db
def test_each_sign_in_issues_a_new_expiring_token_stored_only_as_a_hash(radiologist, settings):
    first, second = _token(), _token()
    assert first["token"] != second["token"]
    assert _works(first["token"]) and _works(second["token"])
    lifetime = timedelta(seconds=settings.API_TOKEN_LIFETIME_SECONDS)
    expiry = parse_datetime(second["expiry"])
    assert abs(expiry - (timezone.now() + lifetime)) < timedelta(seconds=30)
    stored = AuthToken.objects.filter(user=radiologist)
    assert stored.count() == 2
    assert not stored.filter(digest__in=[first["token"], second["token"]]).exists()
    issued = AuditEvent.objects.filter(action="auth.token_issued", actor_id=radiologist.pk)
    assert {e.details["token"] for e in issued} == {first["token"][:15], second["token"][:15]}


@pytest.mark.django_db
def test_the_token_lifetime_is_configurable(radiologist, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(minutes=5)}
    expiry = parse_datetime(_token()["expiry"])
    assert abs(expiry - (timezone.now() + timedelta(minutes=5))) < timedelta(seconds=30)


@pytest.mark.django_db
def test_an_expired_token_is_refused(radiologist):
    token = _token()["token"]
    AuthToken.objects.filter(user=radiologist).update(expiry=timezone.now() - timedelta(seconds=1))
    response = _api(token).get("/api/studies/")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."


@pytest.mark.django_db
def test_a_password_change_revokes_every_token(radiologist):
    tokens = [_token()["token"] for _ in range(2)]
    radiologist.set_password("a-brand-new-passphrase-91")
    radiologist.save()
    assert not any(_works(t) for t in tokens)
    assert not AuthToken.objects.filter(user=radiologist).exists()
    revoked = AuditEvent.objects.filter(action="auth.token_revoked", object_id=str(radiologist.pk))
    assert revoked.count() == 2 and {e.details["reason"] for e in revoked} == {"password changed"}
    assert AuditEvent.objects.filter(action="user.password_changed", object_id=str(radiologist.pk)).exists()
    assert _works(_token(password="a-brand-new-passphrase-91")["token"])


@pytest.mark.django_db
def test_a_password_set_by_an_administrator_in_the_admin_revokes_the_tokens(radiologist, admin_user):
    token = _token()["token"]
    admin = Client()
    admin.force_login(admin_user)
    new = "another-new-passphrase-57"
    response = admin.post(
        f"/admin/accounts/user/{radiologist.pk}/password/",
        {"password1": new, "password2": new, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not _works(token)
    revoked = AuditEvent.objects.get(action="auth.token_revoked")
    assert revoked.actor_id == admin_user.pk and revoked.details["reason"] == "password changed"


@pytest.mark.django_db
def test_the_owner_revokes_the_token_in_use(radiologist):
    token = _token()["token"]
    other = _token()["token"]
    assert _api(token).post("/api/auth/token/revoke/").status_code == 204
    assert not _works(token) and _works(other)
    event = AuditEvent.objects.get(action="auth.token_revoked")
    assert event.actor_id == radiologist.pk and event.details["reason"] == "revoked by its owner"
    assert event.details["token"] == token[:15]


@pytest.mark.django_db
def test_the_owner_lists_and_revokes_their_own_tokens_but_not_a_colleagues(radiologist, lead):
    mine, lost = _token()["token"], _token()["token"]
    colleagues = _token("lead")["token"]
    listing = _api(mine).get("/api/auth/tokens/")
    assert listing.status_code == 200
    rows = listing.json()
    assert {r["token_key"] for r in rows} == {mine[:15], lost[:15]}
    assert [r["current"] for r in rows if r["token_key"] == mine[:15]] == [True]
    assert mine not in listing.content.decode() and lost not in listing.content.decode()

    assert _api(mine).delete(f"/api/auth/tokens/{colleagues[:15]}/").status_code == 404
    assert _works(colleagues)
    assert _api(mine).delete(f"/api/auth/tokens/{lost[:15]}/").status_code == 204
    assert not _works(lost) and _works(mine)


@pytest.mark.django_db
def test_revoking_needs_a_token_or_a_session(radiologist):
    assert APIClient().post("/api/auth/token/revoke/").status_code == 401
    assert APIClient().get("/api/auth/tokens/").status_code == 401


@pytest.mark.django_db
def test_an_administrator_sees_and_revokes_tokens_in_the_admin(radiologist, admin_user):
    token = _token()["token"]
    admin = Client()
    admin.force_login(admin_user)
    listing = admin.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert token[:15] in page and token not in page and "rad" in page
    stored = AuthToken.objects.get(user=radiologist)
    response = admin.post(
        "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [stored.digest]}, follow=True
    )
    assert "Revoked 1 token" in response.content.decode()
    assert not _works(token)
    event = AuditEvent.objects.get(action="auth.token_revoked")
    assert event.actor_id == admin_user.pk and event.object_id == str(radiologist.pk)
    assert event.details["reason"] == "revoked by an administrator"
    assert admin.get("/admin/accounts/apitoken/add/").status_code == 403  # nobody mints tokens for others


@pytest.mark.django_db
def test_other_roles_do_not_see_tokens_in_the_admin(client, auditor, radiologist):
    _token()
    client.force_login(auditor)
    assert client.get("/admin/accounts/apitoken/").status_code == 403
    client.force_login(radiologist)
    assert client.get("/admin/accounts/apitoken/", follow=True).status_code == 403


@pytest.mark.django_db
def test_an_inactive_users_token_is_refused(radiologist):
    token = _token()["token"]
    radiologist.is_active = False
    radiologist.save(update_fields=["is_active"])
    assert not _works(token)
