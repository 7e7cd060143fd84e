"""The worklist opens on the queue that needs the person most (arbitration for a lead, then their reads in progress,
then studies awaiting a second and a first read) and shows every queue's count at once; each row shows how long its
study has waited and how many of its two reads are done."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from cases.models import Study
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.presenters import waited_words
from tests.conftest import api_client_for
from tests.test_reading import both, make_study, readers  # noqa: F401 (fixture)


@pytest.mark.django_db
def test_the_worklist_opens_on_the_first_queue_with_work(client, technologist, readers):  # noqa: F811
    study = make_study(technologist)
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    # Nothing awaits a first read; the study waits for its second read: Ben's worklist opens there.
    client.force_login(ben)
    response = client.get("/reading/")
    assert response.context["worklist_query"].queue == "awaiting_second"
    assert [row.study.pk for row in response.context["rows"]] == [study.pk]
    assert 'data-queue="awaiting_second" aria-current="page"' in response.content.decode()
    # A queue chosen explicitly is kept, even when empty.
    assert client.get("/reading/?queue=awaiting_first").context["worklist_query"].queue == "awaiting_first"
    assert api_client_for(ben).get("/api/worklist/").json()["queue"] == "awaiting_second"
    # With no work anywhere: the first queue, as before.
    client.force_login(ann)
    assert client.get("/reading/").context["worklist_query"].queue == "awaiting_first"


@pytest.mark.django_db
def test_a_lead_opens_on_the_arbitration_that_waits_with_every_queues_count_shown(client, technologist, readers, lead):  # noqa: F811
    ann, ben = readers
    discordant = make_study(technologist, tag="91")
    for reader, recall in ((ann, True), (ben, False)):
        read = claims.read_claim(study_id=discordant.pk, user=reader)
        reading.read_submit(density="b", read_id=read.pk, user=reader, assessments=both(recall_right=recall))
    discordant.refresh_from_db()
    assert discordant.status == Study.Status.ARBITRATION
    make_study(technologist, tag="92")  # awaits a first read: the first tab, but not what a lead must do first
    claims.read_claim(study_id=make_study(technologist, tag="93").pk, user=lead)  # the lead's own read in progress

    client.force_login(lead)
    response = client.get("/reading/")
    assert response.context["worklist_query"].queue == "arbitration"
    assert [row.study.pk for row in response.context["rows"]] == [discordant.pk]
    html = response.content.decode()
    assert 'data-queue="arbitration" aria-current="page"' in html
    counts = dict(re.findall(r'data-queue="(\w+)"[^>]*>[^<]*<span class="count">(\d+)</span>', html))
    assert counts == {"awaiting_first": "1", "awaiting_second": "0", "in_progress": "1", "arbitration": "1",
                      "completed": "0"}  # fmt: skip
    summary = re.search(r"data-worklist-summary>(.*?)</p>", html).group(1)
    assert re.sub(r"<[^>]+>", "", summary) == (
        "Waiting for you: Awaiting arbitration 1 · My reads in progress 1 · Awaiting first read 1."
    )
    assert api_client_for(lead).get("/api/worklist/").json()["queue"] == "arbitration"
    # A radiologist (no arbitration): their own read in progress before new studies.
    claims.read_claim(study_id=make_study(technologist, tag="94").pk, user=ann)
    client.force_login(ann)
    assert client.get("/reading/").context["worklist_query"].queue == "in_progress"


def test_waiting_times_read_as_a_person_says_them():
    assert [waited_words(timedelta(seconds=s)) for s in (20, 60 * 40, 3 * 3600 + 59 * 60, 47 * 3600, 49 * 3600)] == [
        "under 1 min",
        "40 min",
        "3 h",
        "47 h",
        "2 d",
    ]


@pytest.mark.django_db
def test_rows_show_the_wait_since_ready_and_the_reads_done(client, technologist, readers, monkeypatch):  # noqa: F811
    three_hours_ago = timezone.now() - timedelta(hours=3, minutes=5)
    with monkeypatch.context() as m:  # the audit trail is append-only: the upload is recorded "three hours ago"
        m.setattr("audit.services.timezone.now", lambda: three_hours_ago)
        study = make_study(technologist)
    ready = AuditEvent.objects.filter(study_id=study.pk, action="study.status_changed", details__to="processing")
    assert [e.created_at for e in ready] == [three_hours_ago]
    # It came in a day ago, but the wait counts from when it became ready for reading.
    Study.objects.filter(pk=study.pk).update(created_at=timezone.now() - timedelta(days=1))
    # A study with no audited move to a readable status (written straight to the database): waits since it came in.
    old = Study.objects.create(patient=study.patient, status=Study.Status.AWAITING_READS, created_by=technologist)
    Study.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2, hours=1))
    ann, ben = readers
    client.force_login(ben)
    page = client.get("/reading/?queue=awaiting_first")
    rows = {row.study.pk: row for row in page.context["rows"]}
    assert rows[study.pk].waited == "3 h" and rows[old.pk].waited == "2 d"
    assert rows[study.pk].reads_progress == "0 of 2 reads done"
    html = page.content.decode()
    assert "3 h" in html and "2 d" in html and "0 of 2 reads done" in html
    read = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    page = client.get("/reading/?queue=awaiting_second")
    (row,) = page.context["rows"]
    assert row.reads_done == 1 and row.reads_progress == "1 of 2 reads done" and row.waited == "3 h"
    assert "1 of 2 reads done" in page.content.decode()
    api_row = api_client_for(ben).get("/api/worklist/?queue=awaiting_second").json()["results"][0]
    assert api_row["reads_done"] == 1 and api_row["waited"] == "3 h" and api_row["ready_at"]
