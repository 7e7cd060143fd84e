"""Drafts of reads in progress: saved server-side by the read form's script, restored when the read is reopened;
only the read's own reader saves them, and a submitted read's draft never changes."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from cases.models import Read
from cases.reading import claims
from cases.reading import services as reading
from core.errors import ApplicationError
from tests.test_reading import both, make_study, readers  # noqa: F401 (fixture)


def draft_url(read: Read) -> str:
    return f"/reading/reads/{read.pk}/draft/"


@pytest.mark.django_db
def test_a_draft_is_saved_and_the_form_restores_it(client, technologist, readers):  # noqa: F811
    study = make_study(technologist)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    image = study.images.get(laterality="R")
    client.force_login(ann)
    page = client.get(f"/reading/reads/{read.pk}/").content.decode()
    assert f'data-draft-url="{draft_url(read)}"' in page and "reading_draft.js" in page
    form = {
        "R-birads": "4", "L-birads": "", "comments": "Half done: right mass",
        "R-mark_image": str(image.pk), "R-mark_row": "10.5", "R-mark_column": "20",
        "sneaky": "dropped", "csrfmiddlewaretoken": "x",
    }  # fmt: skip
    response = client.post(draft_url(read), form)
    assert response.status_code == 200 and response.json()["saved_at"]
    read.refresh_from_db()
    assert read.draft == {
        "R-birads": "4", "L-birads": "", "comments": "Half done: right mass",
        "R-mark_image": str(image.pk), "R-mark_row": "10.5", "R-mark_column": "20",
    }  # fmt: skip
    assert read.draft_saved_at is not None and not read.is_submitted
    # Leaving and reopening the read: the form starts from the draft (the viewer reads the mark from its inputs).
    page = client.get(f"/reading/reads/{read.pk}/").content.decode()
    right = page[page.index('data-side="R"') : page.index('data-side="L"')]
    assert '<option value="4" selected>' in right and "recall for assessment" in right
    assert f'name="R-mark_image" value="{image.pk}"' in page and 'name="R-mark_row" value="10.5"' in page
    assert "Half done: right mass</textarea>" in page
    # Submitting makes the assessments the record: the draft goes.
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    read.refresh_from_db()
    assert read.draft is None


@pytest.mark.django_db
def test_only_the_reader_saves_a_draft_and_never_on_a_submitted_read(technologist, readers, lead):  # noqa: F811
    study = make_study(technologist)
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    claims.read_draft_save(read_id=read.pk, user=ann, draft={"R-birads": "1"})
    for other in (ben, lead):
        with pytest.raises(PermissionDenied):
            claims.read_draft_save(read_id=read.pk, user=other, draft={"R-birads": "5"})
        c = Client()
        c.force_login(other)
        assert c.post(draft_url(read), {"R-birads": "5"}).status_code == 403
    read.refresh_from_db()
    assert read.draft == {"R-birads": "1"}
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    with pytest.raises(ApplicationError, match="already submitted"):
        claims.read_draft_save(read_id=read.pk, user=ann, draft={"R-birads": "5"})
    c = Client()
    c.force_login(ann)
    response = c.post(draft_url(read), {"R-birads": "5"})
    assert response.status_code == 400 and "already submitted" in response.json()["detail"]
    read.refresh_from_db()
    assert read.draft is None and read.is_submitted


@pytest.mark.django_db
def test_saving_a_draft_needs_the_csrf_token(technologist, readers):  # noqa: F811
    study = make_study(technologist)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    c = Client(enforce_csrf_checks=True)
    c.force_login(ann)
    assert c.post(draft_url(read), {"R-birads": "4"}).status_code == 403
    page = c.get(f"/reading/reads/{read.pk}/")
    token = page.cookies["csrftoken"].value
    assert c.post(draft_url(read), {"R-birads": "4", "csrfmiddlewaretoken": token}).status_code == 200
    assert c.get(draft_url(read)).status_code == 405


@pytest.mark.django_db
def test_a_handed_over_read_does_not_carry_its_draft(technologist, readers, lead):  # noqa: F811
    study = make_study(technologist)
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    claims.read_draft_save(read_id=read.pk, user=ann, draft={"comments": "Ann's private thoughts"})
    claims.read_assign(study_id=study.pk, reader=ben, by=lead, read_id=read.pk)
    read.refresh_from_db()
    assert read.reader == ben and read.draft is None
