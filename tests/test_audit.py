"""The audit trail: auditors' pages and CSV export, the read-only admin, and the append-only, hash-chained table
(verify_audit finds an edit made around the trigger)."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.http import StreamingHttpResponse

from accounts.roles import Role
from audit.models import AuditEvent
from audit.services import audit_record
from audit.verification import audit_chain_verify
from tests.conftest import make_user

AUDIT_URLS = ["/audit/", "/audit/export.csv"]


def _at(day: int, hour: int = 12):
    return mock.patch("django.utils.timezone.now", return_value=datetime(2025, 3, day, hour, tzinfo=UTC))


def _csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def trail(db, radiologist, lead):
    """Three events on three days, by two people, about two studies."""
    with _at(1):
        a = audit_record(action="read.submitted", actor=radiologist, study_id=11, details={"note": "Calcs upper left"})
    with _at(2):
        b = audit_record(action="outcome.recorded", actor=lead, study_id=12, details={"truth": "malignant"})
    with _at(3, hour=23):
        c = audit_record(action="read.submitted", actor=lead, study_id=12, details={"note": "no change"})
    return a, b, c


# ---- access -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_sends_signed_out_users_to_the_login_page(client):
    for url in AUDIT_URLS:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["technologist", "radiologist", "lead", "admin_user"])
def test_it_refuses_the_audit_pages_to_other_roles(client, role_fixture, request):
    client.force_login(request.getfixturevalue(role_fixture))
    for url in AUDIT_URLS:
        assert client.get(url).status_code == 403, url
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.django_db
def test_it_shows_the_audit_links_to_auditors_only(client, auditor, radiologist, lead):
    client.force_login(auditor)
    page = client.get("/audit/").content.decode()
    assert 'href="/audit/"' in page and 'href="/performance/"' in page
    client.force_login(lead)
    page = client.get("/studies/").content.decode()
    assert 'href="/audit/"' not in page and 'href="/performance/"' in page
    client.force_login(radiologist)
    page = client.get("/studies/").content.decode()
    assert 'href="/audit/"' not in page and 'href="/performance/"' not in page


# ---- browsing -----------------------------------------------------------------------------------------------------


def _listed(client, **params) -> list[int]:
    response = client.get("/audit/", params)
    assert response.status_code == 200
    return [row["event"].pk for row in response.context["rows"]]


@pytest.mark.django_db
def test_it_lists_events_newest_first_with_who_what_and_where(client, auditor, trail):
    client.force_login(auditor)
    a, b, c = trail
    ids = _listed(client)
    assert ids == sorted(ids, reverse=True)
    assert ids.index(c.pk) < ids.index(b.pk) < ids.index(a.pk)
    page = client.get("/audit/", {"study": 12}).content.decode()
    assert "outcome.recorded" in page and "Lead radiologist" in page and "#12" in page and "malignant" in page
    # Auditors see no patient images: the audit pages never link to studies or image files.
    assert "/images/" not in page and 'href="/studies/' not in page


@pytest.mark.django_db
def test_it_filters_by_action_user_study_dates_and_details_text(client, auditor, trail):
    client.force_login(auditor)
    a, b, c = trail
    assert _listed(client, action="read.submitted") == [c.pk, a.pk]
    assert _listed(client, user="rad") == [a.pk]
    assert _listed(client, study=12) == [c.pk, b.pk]
    # Whole days, both ends included (c is at 23:00 on the 3rd).
    assert _listed(client, date_from="2025-03-02", date_to="2025-03-03") == [c.pk, b.pk]
    assert _listed(client, date_to="2025-03-01") == [a.pk]
    assert _listed(client, text="CALCS") == [a.pk]
    assert _listed(client, text="malignant", study=11) == []
    assert _listed(client, action="read.submitted", user="lead", study=12, text="change") == [c.pk]


@pytest.mark.django_db
def test_it_reports_invalid_filters(client, auditor, trail):
    client.force_login(auditor)
    response = client.get("/audit/", {"study": "abc", "date_from": "2025-03-03", "date_to": "2025-03-01"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get("/audit/export.csv", {"study": "abc"}).status_code == 400
    assert client.get("/audit/", {"action": "no.such.action"}).context["form"].errors


@pytest.mark.django_db
def test_it_pages_by_fifty(client, auditor):
    for i in range(60):
        audit_record(action="image.downloaded", details={"i": i})
    client.force_login(auditor)
    first = client.get("/audit/", {"action": "image.downloaded"})
    assert len(first.context["rows"]) == 50 and first.context["rows"][0]["event"].details == {"i": 59}
    second = client.get("/audit/", {"action": "image.downloaded", "page": 2})
    assert [r["event"].details["i"] for r in second.context["rows"]] == list(range(9, -1, -1))
    assert "?action=image.downloaded&page=2" in first.content.decode()


# ---- CSV export ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_export_has_a_header_and_the_filtered_rows_and_is_itself_audited(client, auditor, trail):
    a, b, c = trail
    client.force_login(auditor)
    response = client.get("/audit/export.csv", {"study": 12, "date_from": "2025-03-01"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = _csv(response)
    header, body = rows[0], rows[1:]
    assert header[:6] == ["id", "time", "actor_id", "user", "role", "action"] and header[-2:] == ["prev_hash", "hash"]
    assert [int(r[0]) for r in body] == [c.pk, b.pk]
    assert body[1][header.index("user")] == "lead" and body[1][header.index("action")] == "outcome.recorded"
    assert body[1][header.index("details")] == '{"truth": "malignant"}'
    assert body[1][header.index("hash")] == b.hash
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_username == "auditor"
    assert exported.details == {"filters": {"study": 12, "date_from": "2025-03-01"}, "rows": 2}


@pytest.mark.django_db
def test_the_unfiltered_export_holds_every_earlier_event_but_not_its_own(client, auditor, trail):
    client.force_login(auditor)
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    rows = _csv(client.get("/audit/export.csv"))
    assert {int(r[0]) for r in rows[1:]} == before
    assert AuditEvent.objects.get(action="audit.exported").details == {"filters": {}, "rows": len(before)}


@pytest.mark.django_db
def test_the_export_defuses_spreadsheet_formulas(client, auditor):
    evil = make_user(Role.RADIOLOGIST, "@sum")
    audit_record(action="read.claimed", actor=evil, study_id=5)
    client.force_login(auditor)
    rows = _csv(client.get("/audit/export.csv", {"study": 5}))
    assert rows[1][rows[0].index("user")] == "'@sum"


@pytest.mark.django_db
def test_the_export_streams_in_batches(client, auditor, monkeypatch):
    from audit import export

    monkeypatch.setattr(export, "EXPORT_BATCH", 7)
    for i in range(20):
        audit_record(action="study.images_opened", details={"i": i})
    client.force_login(auditor)
    rows = _csv(client.get("/audit/export.csv", {"action": "study.images_opened"}))
    details = rows[0].index("details")
    assert [r[details] for r in rows[1:]] == [f'{{"i": {i}}}' for i in range(19, -1, -1)]


# ---- the admin: read-only, auditors only --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_shows_the_trail_read_only_to_an_auditor(client, auditor, trail):
    a, _, _ = trail
    assert auditor.is_staff  # admin-site access follows the role (accounts.models.User.save)
    client.force_login(auditor)
    changelist = client.get("/admin/audit/auditevent/", {"q": "calcs"})
    assert changelist.status_code == 200
    assert list(changelist.context["cl"].result_list) == [a]
    assert client.get("/admin/audit/auditevent/", {"q": "12"}).status_code == 200  # =study_id with a number
    assert client.get("/admin/audit/auditevent/", {"action__exact": "outcome.recorded"}).status_code == 200
    detail = client.get(f"/admin/audit/auditevent/{a.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert client.get(f"/admin/audit/auditevent/{a.pk}/delete/").status_code == 403
    assert client.post(f"/admin/audit/auditevent/{a.pk}/change/", {"action": "x"}).status_code == 403
    a.refresh_from_db()
    assert a.action == "read.submitted"


@pytest.mark.django_db
def test_the_admin_refuses_the_trail_to_superusers_and_to_other_roles(client, radiologist, trail):
    superuser = make_user(Role.ADMIN, "root")
    superuser.is_superuser = True
    superuser.save(update_fields=["is_superuser"])
    client.force_login(superuser)
    assert client.get("/admin/audit/auditevent/").status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    # A clinical role is not staff: the admin site itself sends them to its login page.
    client.force_login(radiologist)
    response = client.get("/admin/audit/auditevent/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# ---- the table is append-only and the chain shows tampering -------------------------------------------------------


def _five_events() -> list[AuditEvent]:
    return [audit_record(action="image.downloaded", details={"n": n}) for n in range(5)]


@pytest.mark.django_db
def test_verify_audit_passes_an_intact_chain(capsys):
    _five_events()
    call_command("verify_audit")
    assert "Audit trail intact" in capsys.readouterr().out
    checked, broken = audit_chain_verify()
    assert broken is None and checked == AuditEvent.objects.count()


@pytest.mark.django_db
def test_verify_audit_names_the_event_altered_around_the_trigger():
    events = _five_events()
    target = events[2]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE cases_auditevent DISABLE TRIGGER cases_auditevent_append_only")
        cursor.execute(
            "UPDATE cases_auditevent SET details = %s::jsonb WHERE id = %s", ['{"n": 2, "edited": true}', target.pk]
        )
        cursor.execute("ALTER TABLE cases_auditevent ENABLE TRIGGER cases_auditevent_append_only")
    with pytest.raises(CommandError, match=rf"broken at event {target.pk}: its contents do not match its hash"):
        call_command("verify_audit")
    # The trigger is back: the same edit is refused again.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE cases_auditevent SET details = '{}'::jsonb WHERE id = %s", [target.pk])


@pytest.mark.django_db
def test_verify_audit_finds_a_deleted_event():
    events = _five_events()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE cases_auditevent DISABLE TRIGGER cases_auditevent_append_only")
        cursor.execute("DELETE FROM cases_auditevent WHERE id = %s", [events[2].pk])
        cursor.execute("ALTER TABLE cases_auditevent ENABLE TRIGGER cases_auditevent_append_only")
    with pytest.raises(CommandError, match=rf"broken at event {events[3].pk}: its previous-hash"):
        call_command("verify_audit")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE cases_auditevent SET action = 'edited' WHERE id = %s",
        "UPDATE cases_auditevent SET details = '{}'::jsonb WHERE id = %s",
        "DELETE FROM cases_auditevent WHERE id = %s",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(sql):
    event = _five_events()[2]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "image.downloaded"


@pytest.mark.django_db
def test_the_database_refuses_orm_updates_and_deletes():
    events = _five_events()
    target = AuditEvent.objects.filter(pk=events[2].pk)
    with pytest.raises(DatabaseError, match="UPDATE refused"), transaction.atomic():
        target.update(action="edited")
    with pytest.raises(DatabaseError, match="DELETE refused"), transaction.atomic():
        target.delete()
    with pytest.raises(DatabaseError, match="UPDATE refused"), transaction.atomic():
        event = target.get()
        event.details = {"n": 99}
        event.save()
    with pytest.raises(DatabaseError, match="DELETE refused"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(action="image.downloaded").count() == 5
    assert audit_chain_verify()[1] is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_a_valid_chain():
    threads_count, per_thread = 6, 10
    barrier = threading.Barrier(threads_count)
    errors: list[Exception] = []

    def append(worker: int) -> None:
        try:
            barrier.wait()
            for n in range(per_thread):
                audit_record(action="study.images_opened", details={"worker": worker, "n": n})
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert AuditEvent.objects.filter(action="study.images_opened").count() == threads_count * per_thread
    checked, broken = audit_chain_verify()
    assert broken is None and checked == AuditEvent.objects.count()
    call_command("verify_audit")


# ---- the trail is several chains: appends do not wait for each other -----------------------------------------------


def _on_chain(chain: int, **fields) -> AuditEvent:
    """An event on a given chain: the chain its connection prefers, free in these tests."""
    connection._audit_chain = chain
    return audit_record(action="image.downloaded", **fields)


@pytest.mark.django_db
def test_the_events_of_one_transaction_stay_on_one_chain():
    with transaction.atomic():
        events = [audit_record(action="image.downloaded", details={"n": n}) for n in range(3)]
    assert len({e.chain for e in events}) == 1
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]


@pytest.mark.django_db
def test_verify_audit_checks_each_chain_of_an_interleaved_trail():
    events = [_on_chain(chain, details={"n": n}) for n, chain in enumerate([3, 5, 3, 5, 3])]
    assert events[2].prev_hash == events[0].hash and events[3].prev_hash == events[1].hash
    assert audit_chain_verify() == (5, None)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE cases_auditevent DISABLE TRIGGER cases_auditevent_append_only")
        cursor.execute("DELETE FROM cases_auditevent WHERE id = %s", [events[2].pk])
        cursor.execute("ALTER TABLE cases_auditevent ENABLE TRIGGER cases_auditevent_append_only")
    # The gap is found where chain 3 goes on, not at chain 5's next row.
    checked, broken = audit_chain_verify()
    assert (checked, broken.event_id) == (3, events[4].pk) and "previous-hash" in broken.problem


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tampering",
    [
        "UPDATE cases_auditevent SET chain = 6 WHERE id = %s",  # moved to another chain
        "UPDATE cases_auditevent SET study_id = 99 WHERE id = %s",  # altered
    ],
)
def test_verify_audit_finds_a_row_moved_to_another_chain_or_altered(tampering):
    events = [_on_chain(chain, details={"n": n}) for n, chain in enumerate([3, 5, 3, 5])]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE cases_auditevent DISABLE TRIGGER cases_auditevent_append_only")
        cursor.execute(tampering, [events[2].pk])
        cursor.execute("ALTER TABLE cases_auditevent ENABLE TRIGGER cases_auditevent_append_only")
    with pytest.raises(CommandError, match=rf"broken at event {events[2].pk}"):
        call_command("verify_audit")


@pytest.mark.django_db(transaction=True)
def test_a_transaction_holding_a_chain_does_not_hold_up_other_audited_writes():
    """One global lock made every audited write wait for the slowest open transaction that had written one."""
    held, release = threading.Event(), threading.Event()
    outcome: dict[str, AuditEvent] = {}

    def slow_transaction() -> None:
        try:
            with transaction.atomic():
                outcome["slow"] = audit_record(action="read.submitted", details={"slow": True})
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def quick_write() -> None:
        try:
            outcome["quick"] = audit_record(action="image.downloaded")
        finally:
            connection.close()

    slow = threading.Thread(target=slow_transaction)
    slow.start()
    try:
        assert held.wait(timeout=10)
        quick = threading.Thread(target=quick_write)
        quick.start()
        quick.join(timeout=10)
        assert not quick.is_alive(), "the audited write waited for another transaction to commit"
    finally:
        release.set()
        slow.join()
    assert outcome["quick"].chain != outcome["slow"].chain
    assert audit_chain_verify() == (AuditEvent.objects.count(), None)
