"""Reading sessions and statistics (issue 23, item 7): a reader starts a session and goes from case to case; the
statistics page shows, per reader and per site over 7, 28 and 365 days, reads, recall rate, technical recall rate,
median time per read and agreement with the other reader (Cohen's kappa), with figures worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from cases.models import Appointment, Read, ReadingSession, ScreeningEpisode, Study
from cases.reading import claims, sessions
from cases.reading import services as reading
from cases.reading.statistics import NO_SITE, PairRow, ReadRow, cohen_kappa, reading_statistics, statistics_from
from cases.reading.technical_recall import TechnicalRecallInput
from core.errors import ApplicationError
from tests.conftest import api_client_for, make_user
from tests.test_reading import both, make_study

NOW = timezone.now()

# (site, days ago, ann's first read: recall, technical recall, seconds; ben's second read: recall, seconds)
SITE = [
    ("North", 2, True, False, 60, True, 120),
    ("North", 3, False, False, 100, True, 30),
    ("South", 10, False, True, 200, False, 40),
    ("South", 100, False, False, 300, False, 50),
]


def _at_site(study: Study, site: str, by, n: int) -> None:
    episode = ScreeningEpisode.objects.create(patient=study.patient, created_by=by)
    appointment = Appointment.objects.create(episode=episode, starts_at=NOW, site=site, accession_number=f"ACC{n}",
                                             study_instance_uid=f"1.2.826.0.1.{n}", created_by=by)  # fmt: skip
    Study.objects.filter(pk=study.pk).update(appointment=appointment)


def _give(study: Study, reader, *, recall: bool, days: int, seconds: int, repeat: bool = False) -> Read:
    read = claims.read_claim(study_id=study.pk, user=reader)
    repeats = [TechnicalRecallInput("R", "CC", "motion")] if repeat else []
    reading.read_submit(read_id=read.pk, user=reader, assessments=both(recall_right=recall), density="b",
                        technical_recalls=repeats)  # fmt: skip
    submitted = NOW - timedelta(days=days)
    Read.objects.filter(pk=read.pk).update(submitted_at=submitted, claimed_at=submitted - timedelta(seconds=seconds))
    return read


@pytest.fixture
def site(db, technologist, lead):
    ann, ben = make_user("radiologist", "ann"), make_user("radiologist", "ben")
    reads = []
    for n, (where, days, a_recall, a_repeat, a_sec, b_recall, b_sec) in enumerate(SITE):
        study = make_study(technologist, tag=f"7{n}")
        _at_site(study, where, lead, n)
        reads.append(_give(study, ann, recall=a_recall, days=days, seconds=a_sec, repeat=a_repeat))
        _give(study, ben, recall=b_recall, days=days, seconds=b_sec)
    # Older than a year: in no window. No appointment: its site is not known.
    _give(make_study(technologist, tag="79"), ann, recall=True, days=400, seconds=1000)
    # One ended session of ann's, 30 minutes long, holding her two most recent reads.
    session = ReadingSession.objects.create(reader=ann)
    start = NOW - timedelta(days=2, hours=1)
    ReadingSession.objects.filter(pk=session.pk).update(started_at=start, ended_at=start + timedelta(minutes=30))
    Read.objects.filter(pk__in=[reads[0].pk, reads[1].pk]).update(session=session)
    return ann, ben


def _row(rows, label):
    return next(r for r in rows if r.label == label)


def test_cohens_kappa_worked_out_by_hand():
    # Observed 3/4; the raters say yes 1/2 and 1/4 of the time: chance 1/2 * 1/4 + 1/2 * 3/4 = 1/2; (3/4-1/2)/(1/2).
    assert cohen_kappa([(True, True), (True, False), (False, False), (False, False)]) == pytest.approx(0.5)
    assert cohen_kappa([(True, False), (False, True)]) == pytest.approx(-1.0)
    assert cohen_kappa([(False, False), (False, False)]) is None  # chance agreement total: undefined
    assert cohen_kappa([]) is None


def test_figures_per_reader_and_site_equal_the_hand_computed_values(site, lead, django_assert_max_num_queries):
    ann, ben = site
    with django_assert_max_num_queries(6):  # three data queries, the names, the role: never one per read
        report = reading_statistics(user=lead, now=NOW)
    assert report.sees_all and [r.label for r in report.readers] == ["ann", "ben"]
    a, b = _row(report.readers, "ann").figures, _row(report.readers, "ben").figures
    # 7 days: ann's reads of 2 and 3 days ago; recalled 1 of 2; median of 60 s and 100 s.
    assert (a[7].reads, a[7].recalls, a[7].technical_recalls, a[7].median_seconds) == (2, 1, 0, 80)
    assert a[7].recall_rate == 50 and a[7].technical_recall_rate == 0
    # Pairs (ann, ben): (yes, yes), (no, yes): agreed 1 of 2; chance 1/2 * 1 = 1/2, observed 1/2: kappa 0.
    assert (a[7].agreement.pairs, a[7].agreement.agreed) == (2, 1) and a[7].agreement.kappa == pytest.approx(0.0)
    # 28 days adds the South read of 10 days ago with its technical recall: pairs (y,y), (n,y), (n,n):
    # observed 2/3, chance 1/3 * 2/3 + 2/3 * 1/3 = 4/9, kappa (2/3 - 4/9) / (5/9) = 0.4.
    assert (a[28].reads, a[28].recalls, a[28].technical_recalls, a[28].median_seconds) == (3, 1, 1, 100)
    assert a[28].agreement.kappa == pytest.approx(0.4) and a[28].agreement.percent == pytest.approx(200 / 3)
    # 365 days: four reads (the one of 400 days ago is out), median of 60, 100, 200, 300 s; kappa 0.5.
    assert (a[365].reads, a[365].recalls, a[365].technical_recalls, a[365].median_seconds) == (4, 1, 1, 150)
    assert a[365].recall_rate == 25 and a[365].technical_recall_rate == 25
    assert (a[365].agreement.pairs, a[365].agreement.agreed) == (4, 3) and a[365].agreement.kappa == pytest.approx(0.5)
    # ben: recalled 2 of 4, median of 30, 40, 50, 120 s = 45 s; the same pairs seen from his side.
    assert (b[365].reads, b[365].recalls, b[365].median_seconds, b[365].recall_rate) == (4, 2, 45, 50)
    assert b[365].agreement.agreed == 3 and b[365].agreement.kappa == pytest.approx(0.5)
    assert b[7].reads == 2 and b[7].median_seconds == 75
    # Sites: North holds the two recent studies (4 reads, 3 recalls, times 60, 120, 100, 30 s: median 80 s).
    north, south = _row(report.sites, "North").figures, _row(report.sites, "South").figures
    assert (north[7].reads, north[7].recalls, north[7].median_seconds, north[7].recall_rate) == (4, 3, 80, 75)
    assert north[7].agreement.pairs == 2 and north[7].agreement.kappa == pytest.approx(0.0)
    assert south[7].reads == 0 and south[7].recall_rate is None and south[7].median_seconds is None
    assert (south[28].reads, south[28].technical_recalls, south[28].technical_recall_rate) == (2, 1, 50)
    # South's two pairs both said no: 100 % agreement, kappa undefined.
    assert south[365].agreement.percent == 100 and south[365].agreement.kappa is None
    assert NO_SITE not in [r.label for r in report.sites]  # its only read is 400 days old
    total = report.total.figures[365]
    assert (total.reads, total.recalls, total.technical_recalls, total.median_seconds) == (8, 3, 1, 80)
    assert total.agreement.kappa == pytest.approx(0.5)
    # Sessions: one ended session of 30 minutes holding two reads.
    s7 = report.sessions[7]
    assert (s7.sessions, s7.open, s7.reads, s7.reads_per_session, s7.mean_minutes) == (1, 0, 2, 2, 30)


def test_older_reads_fall_out_of_the_windows(site, lead):
    ann, _ = site
    later = reading_statistics(user=lead, now=NOW + timedelta(days=6))
    # Six days on, the read of 2 days ago is 8 days old: only ann's 7-day figures change.
    assert later.total.figures[7].reads == 0
    assert _row(later.readers, "ann").figures[28].reads == 3
    assert reading_statistics(user=lead, now=NOW + timedelta(days=400)).total.figures[365].reads == 0


def test_a_radiologist_sees_their_own_row_and_the_sites_a_lead_every_reader(site, lead, auditor, technologist,
                                                                            client):  # fmt: skip
    ann, ben = site
    own = api_client_for(ann).get("/api/reading/statistics/")
    assert own.status_code == 200
    body = own.json()
    assert [r["username"] for r in body["readers"]] == ["ann"] and body["every_reader"] is False
    assert {s["site"] for s in body["sites"]} == {"North", "South"}
    assert body["total"]["windows"]["365"]["reads"] == 8
    assert body["readers"][0]["windows"]["365"]["agreement"]["kappa"] == pytest.approx(0.5)
    for user in (lead, auditor):
        every = api_client_for(user).get("/api/reading/statistics/").json()
        assert [r["username"] for r in every["readers"]] == ["ann", "ben"] and every["every_reader"] is True
    assert api_client_for(technologist).get("/api/reading/statistics/").status_code == 403

    client.force_login(ben)
    page = client.get("/reading/statistics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-reader="ben"' in html and 'data-reader="ann"' not in html and 'data-site="North"' in html
    assert "claimed" in html  # the page says which times the time per read runs between
    client.force_login(lead)
    html = client.get("/reading/statistics/").content.decode()
    assert 'data-reader="ann"' in html and 'data-reader="ben"' in html and 'id="window-365"' in html
    assert "50.0 % (1 of 2)" in html  # ann's 7-day recall rate
    assert 'href="/reading/statistics/"' in client.get("/reading/").content.decode()
    client.force_login(technologist)
    assert client.get("/reading/statistics/").status_code == 403
    assert 'href="/reading/statistics/"' not in client.get("/").content.decode()


@pytest.mark.django_db
def test_signed_out_visitors_are_sent_to_sign_in(client):
    for url in ("/reading/statistics/",):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post("/reading/sessions/start/").status_code == 302
    assert client.get("/api/reading/statistics/").status_code in (401, 403)


@pytest.mark.django_db
def test_a_session_goes_from_case_to_case_and_is_audited(technologist, client):
    ann = make_user("radiologist", "ann")
    first, second = make_study(technologist, tag="81"), make_study(technologist, tag="82")
    client.force_login(ann)
    worklist = client.get("/reading/").content.decode()
    assert 'data-reading-session="none"' in worklist and "Start reading session" in worklist
    started = client.post("/reading/sessions/start/")
    session = ReadingSession.objects.get(reader=ann)
    assert session.is_open and AuditEvent.objects.filter(action="reading.session_started", actor_id=ann.pk).count() == 1
    read = Read.objects.get(reader=ann, study=first)  # the oldest study, claimed for her
    assert started.status_code == 302 and started["Location"] == f"/reading/reads/{read.pk}/"
    assert "Reading session: case 1 of 2 · 0 reads submitted" in client.get(started["Location"]).content.decode()
    done = client.post(f"/reading/reads/{read.pk}/", {"R-birads": "1", "L-birads": "1", "density": "b"})
    following = Read.objects.get(reader=ann, study=second)
    assert done.status_code == 302 and done["Location"] == f"/reading/reads/{following.pk}/"
    read.refresh_from_db()
    assert read.is_submitted and read.session_id == session.pk
    assert "case 2 of 2 · 1 read submitted" in client.get(done["Location"]).content.decode()
    last = client.post(f"/reading/reads/{following.pk}/", {"R-birads": "1", "L-birads": "1", "density": "b"})
    assert last.status_code == 302 and last["Location"] == "/reading/"  # the queue is empty
    assert 'data-reading-session="open"' in client.get("/reading/").content.decode()
    assert client.post("/reading/sessions/end/").status_code == 302
    session.refresh_from_db()
    assert not session.is_open
    ended = AuditEvent.objects.get(action="reading.session_ended", actor_id=ann.pk)
    assert ended.details["reads"] == 2 and ended.object_id == str(session.pk)
    # A read given outside any session stays on its page and points to no session.
    third = make_study(technologist, tag="83")
    read = claims.read_claim(study_id=third.pk, user=ann)
    response = client.post(f"/reading/reads/{read.pk}/", {"R-birads": "1", "L-birads": "1", "density": "b"})
    assert response["Location"] == f"/reading/reads/{read.pk}/"
    assert Read.objects.get(pk=read.pk).session_id is None
    assert client.post("/reading/sessions/end/").status_code == 302  # nothing open: a message, no error
    assert AuditEvent.objects.filter(action="reading.session_ended").count() == 1


@pytest.mark.django_db
def test_one_open_session_per_reader(technologist):
    ann, ben = make_user("radiologist", "ann"), make_user("radiologist", "ben")
    sessions.session_start(user=ann)
    with pytest.raises(ApplicationError, match="already have a reading session open"):
        sessions.session_start(user=ann)
    with pytest.raises(IntegrityError), transaction.atomic():  # the database refuses it too
        ReadingSession.objects.create(reader=ann)
    sessions.session_start(user=ben)  # another reader's session is theirs
    sessions.session_end(user=ann)
    sessions.session_start(user=ann)  # after the end, a new one
    assert ReadingSession.objects.filter(reader=ann).count() == 2
    with pytest.raises(Exception, match="Your role does not allow"):
        sessions.session_start(user=technologist)


def test_session_pages_need_post_and_a_reader(site, technologist, client):
    ann, _ = site
    client.force_login(ann)
    assert client.get("/reading/sessions/start/").status_code == 405
    client.force_login(technologist)
    assert client.post("/reading/sessions/start/").status_code == 403
    assert not ReadingSession.objects.filter(reader=technologist).exists()


def test_statistics_from_rows_alone():
    """The arithmetic needs no database: one's own row appears even before one's first read; site rows count every
    reader; a reader's agreement is seen from their side of each pair."""
    day = timedelta(days=1)
    reads = [
        ReadRow(1, "North", NOW - day, 30.0, True, False),
        ReadRow(2, "North", NOW - day, 90.0, False, True),
        ReadRow(2, "North", NOW - 50 * day, 10.0, False, False),
    ]
    pairs = [PairRow(1, 2, "North", NOW - day, True, False)]
    report = statistics_from(reads=reads, pairs=pairs, sessions=[], now=NOW, names={1: "ann", 2: "ben", 3: "cy"},
                             reader_ids={3})  # fmt: skip
    assert [r.label for r in report.readers] == ["cy"] and report.readers[0].figures[365].reads == 0
    north = report.sites[0].figures
    assert (north[7].reads, north[7].recalls, north[7].technical_recalls, north[7].median_seconds) == (2, 1, 1, 60)
    assert (north[28].reads, north[365].reads) == (2, 3)
    every = statistics_from(reads=reads, pairs=pairs, sessions=[], now=NOW, names={1: "ann", 2: "ben"},
                            reader_ids=None)  # fmt: skip
    assert [r.label for r in every.readers] == ["ann", "ben"]
    assert every.readers[0].figures[7].agreement.agreed == 0 and every.sessions[7].reads_per_session is None


@pytest.mark.django_db
def test_the_session_api(technologist):
    ann = make_user("radiologist", "ann")
    study = make_study(technologist, tag="84")
    api = api_client_for(ann)
    assert api.get("/api/reading/session/").status_code == 404
    started = api.post("/api/reading/session/")
    assert started.status_code == 201
    read = Read.objects.get(reader=ann, study=study)
    assert started.json()["next_read"] == read.pk and started.json()["progress"] == {"done": 0, "total": 1}
    assert api.post("/api/reading/session/").status_code == 400  # one open session
    assert api.get("/api/reading/session/").json()["ended_at"] is None
    ended = api.delete("/api/reading/session/")
    assert ended.status_code == 200 and ended.json()["ended_at"] is not None
    assert api.delete("/api/reading/session/").status_code == 400
    assert api_client_for(technologist).post("/api/reading/session/").status_code == 403
    assert list(AuditEvent.objects.filter(action__startswith="reading.session").values_list("action", flat=True)) == [
        "reading.session_started", "reading.session_ended"]  # fmt: skip
