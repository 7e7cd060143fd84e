"""Failed sign-in lockout (accounts.lockout on django-axes): a name is locked at one address, never everywhere;
administrators see and lift lockouts; every failed or refused attempt is in the audit trail with the name tried."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import FailedSignIn
from audit.models import AuditEvent
from tests.conftest import PASSWORD

ATTACKER = "10.9.8.7"
VICTIM_PC = "10.1.1.20"


def _fail(client: Client, username: str, times: int, **extra) -> None:
    for _ in range(times):
        client.post("/accounts/login/", {"username": username, "password": "wrong-password"}, **extra)


@pytest.mark.django_db
def test_typing_a_colleagues_name_wrongly_does_not_lock_them_out(radiologist, settings):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    _fail(attacker, "rad", settings.LOGIN_FAILURE_LIMIT + 3)
    refused = attacker.post("/accounts/login/", {"username": "rad", "password": PASSWORD})
    assert b"Too many failed sign-in attempts" in refused.content  # the attacker's own address is locked

    colleague = Client(REMOTE_ADDR=VICTIM_PC)
    response = colleague.post("/accounts/login/", {"username": "rad", "password": PASSWORD})
    assert response.status_code == 302 and colleague.session["_auth_user_id"] == str(radiologist.pk)
    token = Client(REMOTE_ADDR=VICTIM_PC).post("/api/auth/token/", {"username": "rad", "password": PASSWORD})
    assert token.status_code == 200


@pytest.mark.django_db
def test_one_address_failing_over_many_names_is_refused_for_all_names(radiologist, lead, settings):
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 6
    sprayer = Client(REMOTE_ADDR=ATTACKER)
    for name in ("ann", "bob", "cid"):
        _fail(sprayer, name, 2)
    refused = sprayer.post("/accounts/login/", {"username": "lead", "password": PASSWORD})
    assert b"Too many failed sign-in attempts" in refused.content and "_auth_user_id" not in sprayer.session
    elsewhere = Client(REMOTE_ADDR=VICTIM_PC)
    assert elsewhere.post("/accounts/login/", {"username": "lead", "password": PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_behind_the_proxy_the_lockout_counts_the_address_the_proxy_saw(radiologist, settings):
    settings.BEHIND_TLS_PROXY = True
    proxy = {"REMOTE_ADDR": "172.18.0.2", "secure": True, "HTTP_X_FORWARDED_PROTO": "https"}
    attacker = Client()
    _fail(attacker, "rad", settings.LOGIN_FAILURE_LIMIT, HTTP_X_FORWARDED_FOR=f"1.2.3.4, {ATTACKER}", **proxy)
    assert set(FailedSignIn.objects.values_list("ip_address", flat=True)) == {ATTACKER}
    colleague = Client()
    response = colleague.post(
        "/accounts/login/", {"username": "rad", "password": PASSWORD}, HTTP_X_FORWARDED_FOR=VICTIM_PC, **proxy
    )
    assert response.status_code == 302  # same proxy address, other client: not locked
    failed = AuditEvent.objects.filter(action="auth.login_failed")
    assert set(failed.values_list("ip_address", flat=True)) == {ATTACKER}  # the audit trail's address too


@pytest.mark.django_db
def test_failed_and_refused_sign_ins_are_audited_with_the_name_tried(radiologist, settings):
    client = Client(REMOTE_ADDR=ATTACKER)
    _fail(client, "rad", settings.LOGIN_FAILURE_LIMIT)
    client.post("/accounts/login/", {"username": "rad", "password": PASSWORD})  # refused: locked
    client.post("/api/auth/token/", {"username": "rad", "password": PASSWORD})  # refused too
    _fail(client, "nobody-of-that-name", 1)

    rows = list(AuditEvent.objects.filter(action="auth.login_failed").order_by("id"))
    assert len(rows) == settings.LOGIN_FAILURE_LIMIT + 3
    assert [r.details["locked_out"] for r in rows] == [False] * settings.LOGIN_FAILURE_LIMIT + [True, True, False]
    assert {r.details["username"] for r in rows} == {"rad", "nobody-of-that-name"}
    assert all(r.actor_id is None and r.ip_address == ATTACKER for r in rows)  # nobody was signed in
    assert {(r.object_type, r.object_id) for r in rows if r.details["username"] == "rad"} == {
        ("user", str(radiologist.pk))
    }
    assert rows[-1].object_id == ""  # no such account
    locked = AuditEvent.objects.get(action="auth.locked_out")
    assert locked.details == {"username": "rad"} and locked.ip_address == ATTACKER
    assert "password" not in str([r.details for r in rows])


@pytest.mark.django_db
def test_an_administrator_sees_and_lifts_a_lockout(radiologist, admin_user, settings):
    locked_out = Client(REMOTE_ADDR=VICTIM_PC)
    _fail(locked_out, "rad", settings.LOGIN_FAILURE_LIMIT)
    assert b"Too many" in locked_out.post("/accounts/login/", {"username": "rad", "password": PASSWORD}).content

    admin = Client()
    admin.force_login(admin_user)
    listing = admin.get("/admin/accounts/failedsignin/")
    assert listing.status_code == 200
    assert VICTIM_PC in listing.content.decode() and "rad" in listing.content.decode()
    attempt = FailedSignIn.objects.get(username="rad")
    response = admin.post(
        "/admin/accounts/failedsignin/", {"action": "lift_lockout", "_selected_action": [attempt.pk]}, follow=True
    )
    assert "Lifted 1 failure record" in response.content.decode()
    assert not FailedSignIn.objects.exists()

    assert locked_out.post("/accounts/login/", {"username": "rad", "password": PASSWORD}).status_code == 302
    lifted = AuditEvent.objects.get(action="auth.lockout_lifted")
    assert lifted.actor_id == admin_user.pk and lifted.object_id == str(radiologist.pk)
    assert lifted.details == {"username": "rad", "address": VICTIM_PC, "failures": settings.LOGIN_FAILURE_LIMIT}


@pytest.mark.django_db
def test_only_administrators_see_failed_sign_ins(client, auditor, lead):
    for user in (auditor, lead):
        client.force_login(user)
        response = client.get("/admin/accounts/failedsignin/", follow=True)
        assert response.status_code == 403, user.role


@pytest.mark.django_db
def test_a_successful_sign_in_forgets_earlier_failures_at_that_address(radiologist, settings):
    client = Client(REMOTE_ADDR=VICTIM_PC)
    _fail(client, "rad", settings.LOGIN_FAILURE_LIMIT - 1)
    assert client.post("/api/auth/token/", {"username": "rad", "password": PASSWORD}).status_code == 200
    assert not FailedSignIn.objects.exists()
    _fail(client, "rad", settings.LOGIN_FAILURE_LIMIT - 1)
    assert client.post("/accounts/login/", {"username": "rad", "password": PASSWORD}).status_code == 302
    assert not FailedSignIn.objects.exists()
