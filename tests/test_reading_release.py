"""Releasing a claimed read (its reader, or a lead radiologist; 403 for anyone else), and addenda refused with 403
to anyone but the read's author (page and API)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts.roles import Role
from audit.models import AuditEvent
from cases.models import Read, ReadAddendum
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.worklist import Queue, WorklistQuery, worklist
from core.errors import ApplicationError
from tests.conftest import api_client_for, make_user
from tests.test_reading import both, make_study, readers  # noqa: F401 (fixture)


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.mark.django_db
def test_the_reader_releases_a_claimed_read_and_another_can_claim_it(technologist, readers):  # noqa: F811
    study = make_study(technologist)
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    claims.read_draft_save(read_id=read.pk, user=ann, draft={"R-birads": "4"})
    c = logged_in(ann)
    page = c.get(f"/reading/reads/{read.pk}/").content.decode()
    # Confirmed in the page before it is sent (no script needed: the button sits inside a disclosure).
    assert f'action="/reading/reads/{read.pk}/release/"' in page and "Release this read" in page
    assert "<details" in page
    response = c.post(f"/reading/reads/{read.pk}/release/")
    assert response.status_code == 302 and response["Location"] == "/reading/"
    assert not Read.objects.filter(pk=read.pk).exists()
    event = AuditEvent.objects.get(action="read.released")
    assert event.study_id == study.pk and event.actor_id == ann.pk and event.object_id == str(read.pk)
    assert event.details["reader"] == "ann" and event.details["kind"] == "first" and not event.details["by_lead"]
    assert event.details["had_draft"] is True
    # Back in the queue for everyone; ann herself may claim it again (she gave no read of it).
    assert study.pk in [s.pk for s in worklist(user=ben, query=WorklistQuery(queue=Queue.AWAITING_FIRST))]
    again = claims.read_claim(study_id=study.pk, user=ben)
    assert again.kind == "first" and again.reader == ben and again.draft is None


@pytest.mark.django_db
def test_nobody_else_releases_someones_read_but_a_lead_may(technologist, readers, lead):  # noqa: F811
    study = make_study(technologist)
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    with pytest.raises(PermissionDenied):
        claims.read_release(read_id=read.pk, user=ben)
    assert logged_in(ben).post(f"/reading/reads/{read.pk}/release/").status_code == 403
    response = api_client_for(ben).post(f"/api/reads/{read.pk}/release/")
    assert response.status_code == 403 and "Only the radiologist holding this read" in response.json()["detail"]
    assert logged_in(technologist).post(f"/reading/reads/{read.pk}/release/").status_code == 403
    assert Read.objects.filter(pk=read.pk, reader=ann).exists()
    assert not AuditEvent.objects.filter(action="read.released").exists()
    # A lead radiologist may (they can already hand an unfinished read over): audited with who held it.
    page = logged_in(lead).get(f"/studies/{study.pk}/").content.decode()
    assert f'action="/reading/reads/{read.pk}/release/"' in page
    response = logged_in(lead).post(f"/reading/reads/{read.pk}/release/")
    assert response.status_code == 302 and response["Location"] == f"/studies/{study.pk}/"
    assert not Read.objects.filter(pk=read.pk).exists()
    event = AuditEvent.objects.get(action="read.released")
    assert event.actor_id == lead.pk and event.details["reader"] == "ann" and event.details["by_lead"] is True


@pytest.mark.django_db
def test_a_submitted_read_is_not_released(technologist, readers):  # noqa: F811
    study = make_study(technologist)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    with pytest.raises(ApplicationError, match="submitted read cannot be released"):
        claims.read_release(read_id=read.pk, user=ann)
    response = api_client_for(ann).post(f"/api/reads/{read.pk}/release/")
    assert response.status_code == 400 and "cannot be released" in response.json()["detail"]
    assert api_client_for(ann).post("/api/reads/999999/release/").status_code == 404
    assert Read.objects.get(pk=read.pk).is_submitted


@pytest.mark.django_db
def test_an_addendum_on_someone_elses_read_is_403(technologist, readers):  # noqa: F811
    study = make_study(technologist)
    ann, ben = readers
    for user in (ann, ben):
        read = claims.read_claim(study_id=study.pk, user=user)
        reading.read_submit(density="b", read_id=read.pk, user=user, assessments=both())
    anns = Read.objects.get(study=study, reader=ann)
    with pytest.raises(PermissionDenied):
        reading.read_addendum_create(read_id=anns.pk, user=ben, text="not mine")
    # Ben has submitted his own read: he may see Ann's, but not write on it.
    response = api_client_for(ben).post(f"/api/reads/{anns.pk}/addenda/", {"text": "not mine"}, format="json")
    assert response.status_code == 403 and "Only the author" in response.json()["detail"]
    assert logged_in(ben).post(f"/reading/reads/{anns.pk}/addenda/", {"text": "not mine"}).status_code == 403
    other = make_user(Role.LEAD_RADIOLOGIST, "lee")
    assert logged_in(other).post(f"/reading/reads/{anns.pk}/addenda/", {"text": "not mine"}).status_code == 403
    assert not ReadAddendum.objects.exists()
    response = api_client_for(ann).post(f"/api/reads/{anns.pk}/addenda/", {"text": "Left: cyst."}, format="json")
    assert response.status_code == 201
