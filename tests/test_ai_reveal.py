"""A read records what its reader saw of the AI, not what the settings allowed: whether the AI was available
(ai_available, the old ai_shown's meaning, kept by migration 0016) and when the reader first revealed it
(ai_first_shown_at, recorded by the server from the viewer's AI switch, or from the page opening with the AI on under
AI_REVEAL open), audited once. The performance page separates aided from unaided reads. The viewer's switch itself is
checked in chromium in tests/test_reading_page_browser.py."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from cases.models import Outcome, Read
from cases.performance.performance import performance_report
from cases.reading import claims
from cases.reading import services as reading
from tests.conftest import make_user
from tests.test_reading import both, make_study, readers  # noqa: F401 (fixture)
from tests.test_reading_pages import ai_says


def _reveal(client, read: Read):
    return client.post(f"/reading/reads/{read.pk}/ai-revealed/")


def _reveals(read: Read) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="read.ai_revealed", object_id=str(read.pk)))


@pytest.mark.django_db
def test_a_read_that_never_showed_the_ai_says_so(client, technologist, readers, active_model):  # noqa: F811
    """AI_REVEAL on_request (the default): opening, drafting and submitting the read without pressing A records no
    reveal; the submission's audit row says the AI was available and never shown."""
    study = make_study(technologist)
    ai_says(study, active_model, positive="")
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    client.force_login(ann)
    assert client.get(f"/reading/reads/{read.pk}/").status_code == 200
    read = reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    assert (read.ai_available, read.ai_first_shown_at, read.ai_aided) == (True, None, False)
    submitted = AuditEvent.objects.get(action="read.submitted", object_id=str(read.pk))
    assert submitted.details["ai_available"] is True and submitted.details["ai_first_shown_at"] is None
    assert "ai_shown" not in submitted.details
    assert _reveals(read) == []


@pytest.mark.django_db
def test_the_switch_records_the_first_reveal_once_for_the_reader_only(technologist, readers, lead, active_model):  # noqa: F811
    study = make_study(technologist)
    ai_says(study, active_model, positive="L")
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    reader = Client(enforce_csrf_checks=True)
    reader.force_login(ann)
    page = reader.get(f"/reading/reads/{read.pk}/")
    token = page.context["viewer_config"]["csrfToken"]
    assert page.context["viewer_config"]["ai"]["revealUrl"] == f"/reading/reads/{read.pk}/ai-revealed/"

    assert _reveal(reader, read).status_code == 403  # no CSRF token: refused
    assert Read.objects.get(pk=read.pk).ai_first_shown_at is None
    for other in (ben, lead):
        intruder = Client()
        intruder.force_login(other)
        assert _reveal(intruder, read).status_code == 403
    answer = reader.post(f"/reading/reads/{read.pk}/ai-revealed/", HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 200
    first = Read.objects.get(pk=read.pk).ai_first_shown_at
    assert first is not None and answer.json()["ai_first_shown_at"] == first.isoformat()
    assert reader.post(f"/reading/reads/{read.pk}/ai-revealed/", HTTP_X_CSRFTOKEN=token).status_code == 200
    assert Read.objects.get(pk=read.pk).ai_first_shown_at == first  # the first reveal is kept
    [event] = _reveals(read)
    assert event.actor_username == "ann" and event.details == {"kind": "first", "ai_reveal": "on_request",
                                                               "source": "switch"}  # fmt: skip

    read = reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both(recall_left=True))
    assert read.ai_aided is True
    submitted = AuditEvent.objects.get(action="read.submitted", object_id=str(read.pk))
    assert submitted.details["ai_first_shown_at"] == first.isoformat()
    assert reader.post(f"/reading/reads/{read.pk}/ai-revealed/", HTTP_X_CSRFTOKEN=token).status_code == 400
    assert "AI revealed" in reader.get(f"/reading/reads/{read.pk}/").content.decode()


@pytest.mark.django_db
def test_nothing_is_recorded_where_the_ai_may_not_be_shown(client, settings, technologist, readers, active_model):  # noqa: F811
    ann, ben = readers
    settings.READERS_SEE_AI = False
    without = make_study(technologist, tag="21")
    ai_says(without, active_model, positive="L")
    read = claims.read_claim(study_id=without.pk, user=ann)
    client.force_login(ann)
    assert client.get(f"/reading/reads/{read.pk}/").context["viewer_config"]["ai"]["revealUrl"] == ""
    assert _reveal(client, read).status_code == 400
    assert Read.objects.get(pk=read.pk).ai_first_shown_at is None

    settings.READERS_SEE_AI, settings.AI_REVEAL = True, "after_first_impression"
    locked = make_study(technologist, tag="22")
    ai_says(locked, active_model, positive="L")
    read = claims.read_claim(study_id=locked.pk, user=ann)
    assert _reveal(client, read).status_code == 400  # waits for the first impression
    reading.read_first_impression_record(read_id=read.pk, user=ann, impressions=both())
    assert _reveal(client, read).status_code == 200
    assert Read.objects.get(pk=read.pk).ai_first_shown_at is not None


@pytest.mark.django_db
def test_with_ai_reveal_open_the_page_opening_is_the_reveal(client, settings, technologist, readers, active_model):  # noqa: F811
    settings.AI_REVEAL = "open"
    study = make_study(technologist)
    ai_says(study, active_model, positive="L")
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    assert Read.objects.get(pk=read.pk).ai_first_shown_at is None  # claimed, not yet opened
    client.force_login(ann)
    page = client.get(f"/reading/reads/{read.pk}/")
    assert page.context["viewer_config"]["ai"]["on"] is True
    assert Read.objects.get(pk=read.pk).ai_first_shown_at is not None
    [event] = _reveals(read)
    assert event.details["source"] == "opened"
    client.get(f"/reading/reads/{read.pk}/")
    assert len(_reveals(read)) == 1


@pytest.mark.django_db
def test_the_performance_page_separates_aided_from_unaided_reads(client, technologist, readers, lead, active_model):  # noqa: F811
    ann, ben = readers
    for tag in ("31", "32"):
        study = make_study(technologist, tag=tag)
        ai_says(study, active_model, positive="")
        for reader in (ann, ben):
            read = claims.read_claim(study_id=study.pk, user=reader)
            if reader == ann:  # Ann looks at the AI, Ben never does
                reading.read_ai_reveal_record(read_id=read.pk, user=ann, source="switch")
            reading.read_submit(density="b", read_id=read.pk, user=reader, assessments=both())
        Outcome.objects.create(study=study, laterality="R", truth="normal", recorded_by=lead)
    report = performance_report(user=lead, n_bootstrap=10, minimum=1)
    groups = {row.label: row.studies for row in report.reads_by_ai}
    assert groups == {"Reads with the AI seen": 2, "Reads without the AI": 2}
    client.force_login(lead)
    html = client.get("/performance/").content.decode()
    assert "Reads with the AI seen" in html and "Reads without the AI" in html


@pytest.mark.django_db(transaction=True)
def test_migration_0016_keeps_what_ai_shown_meant_under_ai_available(technologist, readers):  # noqa: F811
    from django.db.migrations.executor import MigrationExecutor

    ann, ben = readers
    with_ai = claims.read_claim(study_id=make_study(technologist, tag="41").pk, user=ann)
    without_ai = claims.read_claim(study_id=make_study(technologist, tag="42").pk, user=ben)
    Read.objects.filter(pk=without_ai.pk).update(ai_available=False, ai_reveal="none")
    before = [("cases", "0015_image_reading_order")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, ai_shown FROM cases_read WHERE id IN (%s, %s)", [with_ai.pk, without_ai.pk])
            assert dict(cursor.fetchall()) == {with_ai.pk: True, without_ai.pk: False}
    finally:
        # Forward through 0016 to the latest schema: the code below (ingestion, claims) is today's.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    try:
        kept = {
            r.pk: (r.ai_available, r.ai_first_shown_at, r.ai_reveal_recorded, r.ai_aided) for r in Read.objects.all()
        }
        assert kept == {with_ai.pk: (True, None, False, None), without_ai.pk: (False, None, False, False)}
        new = claims.read_claim(study_id=make_study(technologist, tag="43").pk, user=make_user("radiologist", "cy"))
        assert (new.ai_available, new.ai_reveal_recorded, new.ai_aided) == (True, True, False)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
