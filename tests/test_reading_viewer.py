"""The reading viewer's server side (issue 13): the full-resolution pixels endpoint (access, audit, content), the
prior selector, the hanging data given to the viewer, and the AI reveal modes (READERS_SEE_AI, AI_REVEAL) recorded
on each read, with the first impression recorded before the AI is shown."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from datetime import date
from io import BytesIO

import numpy as np
import pydicom
import pytest

from accounts.roles import Role
from audit.models import AuditEvent
from cases.models import Image, Read, Study
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.viewer import viewer_config
from cases.studies import selectors
from cases.studies.ingestion import IncomingFile, study_upload
from cases.studies.reconciliation import referenced_names
from core import storage
from core.errors import ApplicationError
from imaging.viewer_pixels import viewer_pixels_unpack
from tests.conftest import REPO, api_client_for, make_user
from tests.dicom_factory import make_dicom, make_png, patch_dicom
from tests.test_reading import both, make_study
from tests.test_reading_pages import analyse, form_data, html, viewer_data


@pytest.fixture
def readers(db):
    return make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")


@pytest.fixture
def study(technologist):
    return make_study(technologist)


def pixels_url(image) -> str:
    return f"/images/{image.pk}/pixels/"


# ------------------------------------------------------------------------------------------------ pixels endpoint


@pytest.mark.django_db
def test_it_serves_the_original_values_gzip_encoded(client, study, readers):
    image = study.images.get(laterality="R")
    client.force_login(readers[0])
    name = storage.viewer_pixels_name(image.sha256)
    assert image.viewer_pixels == name and storage.exists(name)  # made by ingestion, with the other files
    assert name in referenced_names()  # kept by storage reconciliation
    response = client.get(pixels_url(image), HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip" and response["Cache-Control"] == "private, no-store"
    assert response["Content-Type"] == "application/vnd.mammo-viewer-pixels"
    body = b"".join(response.streaming_content)
    expected = pydicom.dcmread(BytesIO(storage.read(image.original))).pixel_array
    assert np.array_equal(viewer_pixels_unpack(body), expected)  # the stored values, full size, bit for bit


@pytest.mark.django_db
def test_an_image_stored_before_viewer_pixels_gets_them_on_first_view(client, study, readers):
    image = study.images.get(laterality="L")
    storage.delete(image.viewer_pixels)
    Image.objects.filter(pk=image.pk).update(viewer_pixels="")  # as for images stored before this existed
    client.force_login(readers[0])
    response = client.get(pixels_url(image))
    assert response.status_code == 200
    image.refresh_from_db()
    name = storage.viewer_pixels_name(image.sha256)
    assert image.viewer_pixels == name and storage.exists(name)
    made = {f.name: f.modified for f in storage.listing()}[name]
    client.get(pixels_url(image))
    assert {f.name: f.modified for f in storage.listing()}[name] == made  # kept, not made again


@pytest.mark.django_db
def test_a_client_without_gzip_gets_the_plain_bytes(client, study, readers):
    image = study.images.get(laterality="L")
    client.force_login(readers[0])
    response = client.get(pixels_url(image), HTTP_ACCEPT_ENCODING="identity")
    assert response.status_code == 200 and "Content-Encoding" not in response
    plain = b"".join(response.streaming_content)
    assert plain[:4] == b"MVP1"
    assert np.array_equal(viewer_pixels_unpack(gzip.compress(plain)), viewer_pixels_unpack(storage.read(
        storage.viewer_pixels_name(image.sha256))))  # fmt: skip


@pytest.mark.django_db
def test_the_pixels_are_refused_to_whom_may_not_see_the_study(client, study, auditor, admin_user):
    image = study.images.first()
    assert client.get(pixels_url(image)).status_code == 302  # signed out: to the login page
    for user in (auditor, admin_user):
        client.force_login(user)
        assert client.get(pixels_url(image)).status_code == 403
    assert not AuditEvent.objects.filter(action="study.images_opened", study_id=study.pk).exists()


@pytest.mark.django_db
def test_opening_the_pixels_is_in_the_audit_trail_and_the_api_serves_them_too(client, study, readers, technologist):
    image = study.images.first()
    client.force_login(readers[0])
    client.get(pixels_url(image))
    opened = AuditEvent.objects.get(action="study.images_opened", study_id=study.pk, actor_id=readers[0].pk)
    assert opened.details["first_kind"] == "pixels" and opened.details["first_image_id"] == image.pk
    api = api_client_for(technologist)
    response = api.get(f"/api/images/{image.pk}/pixels/", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    assert AuditEvent.objects.filter(action="study.images_opened", study_id=study.pk, actor_id=technologist.pk).exists()


@pytest.mark.django_db
def test_a_missing_or_damaged_original_is_said_not_served(client, study, readers):
    image = study.images.get(laterality="R")
    client.force_login(readers[0])
    storage.delete(image.viewer_pixels)
    storage.put(image.original, b"DICM is not enough", overwrite=True)
    response = client.get(pixels_url(image))
    assert response.status_code == 422 and "cannot be shown" in response.content.decode()
    storage.delete(image.original)
    assert client.get(pixels_url(image)).status_code == 422


# ---------------------------------------------------------------------------------------------------------- priors


def upload(user, files, **fields) -> Study:
    result = study_upload(user=user, files=[IncomingFile.from_bytes(n, d) for n, d in files], **fields)
    assert result.study is not None, [(o.filename, o.reason) for o in result.outcomes]
    return result.study


@pytest.mark.django_db
def test_the_prior_is_the_womans_most_recent_earlier_study_with_images(technologist, readers):
    def dicom(uid, side, when):
        data = make_dicom(sop_uid=uid, laterality=side, view="CC", patient_id="PRIOR-W")
        return patch_dicom(data, StudyDate=when)

    oldest = upload(technologist, [("a.dcm", dicom("9.1", "R", "20190301"))])
    middle = upload(technologist, [("b.dcm", dicom("9.2", "R", "20210301"))])
    current = upload(technologist, [("c.dcm", dicom("9.3", "R", "20240301"))])
    other_woman = upload(technologist, [("d.png", make_png())], patient_id="SOMEONE-ELSE", laterality="R", view="CC")
    user = readers[0]
    assert selectors.study_prior(user=user, study=current) == middle
    assert selectors.study_prior(user=user, study=middle) == oldest
    assert selectors.study_prior(user=user, study=oldest) is None
    assert selectors.study_prior(user=user, study=other_woman) is None
    # A later-dated study is never a "prior", whatever order the studies came in.
    Study.objects.filter(pk=middle.pk).update(study_date=date(2025, 1, 1))
    assert selectors.study_prior(user=user, study=current) == oldest


# ------------------------------------------------------------------------------------------------ hanging data


@pytest.mark.django_db
def test_the_viewer_gets_orientation_windows_and_rescale_from_the_dicom(technologist, readers):
    data = patch_dicom(
        make_dicom(sop_uid="8.1", laterality="L", view="MLO", patient_id="HANG-W", rescale=(2.0, -10.0)),
        PatientOrientation=["A", "F"],
        WindowCenter=[26000, 30000],
        WindowWidth=[40000, 0],  # a zero width is no window: left out
        WindowCenterWidthExplanation=["SOFT", "BAD"],
    )
    study = upload(technologist, [("l.dcm", data)])
    config = viewer_config(user=readers[0], study=study, reads=[], markable=False, show_ai=False)
    (image,) = config["studies"][0]["images"]
    assert image["patientOrientation"] == ["A", "F"] and (image["slope"], image["intercept"]) == (2.0, -10.0)
    assert image["voi"] == [{"label": "DICOM soft", "center": 26000.0, "width": 40000.0}]
    assert (image["laterality"], image["view"], image["rows"], image["columns"]) == ("L", "MLO", 256, 192)
    assert image["overlayUrl"] is None and config["ai"]["available"] is False and len(config["studies"]) == 1
    json.dumps(config)  # all plain JSON


# ----------------------------------------------------------------------------------------------- AI reveal modes


@pytest.mark.django_db
def test_each_read_records_how_the_ai_could_be_seen(settings, study, readers):
    ann, ben = readers
    settings.AI_REVEAL = "open"
    assert claims.read_claim(study_id=study.pk, user=ann).ai_reveal == "open"
    settings.READERS_SEE_AI = False
    read = claims.read_claim(study_id=study.pk, user=ben)
    assert (read.ai_available, read.ai_reveal) == (False, "none")
    claimed = AuditEvent.objects.filter(action="read.claimed", study_id=study.pk).order_by("pk")
    assert [e.details["ai"] for e in claimed] == ["open", "none"]


@pytest.mark.django_db
def test_the_ai_opens_with_the_read_when_the_site_says_so(client, settings, study, readers, active_model):
    settings.AI_REVEAL = "open"
    analyse(study)
    read = claims.read_claim(study_id=study.pk, user=readers[0])
    client.force_login(readers[0])
    page = html(client.get(f"/reading/reads/{read.pk}/"))
    assert viewer_data(page)["ai"]["on"] is True
    assert "<div data-ai-panel>" in page and "AI result per breast" in page


@pytest.mark.django_db
def test_after_first_impression_the_ai_is_hidden_until_the_impression_is_recorded(
    client, settings, study, readers, active_model
):
    settings.AI_REVEAL = "after_first_impression"
    analyse(study)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    assert read.ai_reveal == "after_first_impression" and read.ai_locked
    client.force_login(ann)
    image = study.images.get(laterality="L")
    page = html(client.get(f"/reading/reads/{read.pk}/"))
    ai = viewer_data(page)["ai"]
    assert ai["available"] and ai["locked"] and not ai["on"]
    # Nothing of the AI in the page or behind its URLs, not only hidden by the script.
    assert "/overlay/" not in page and "AI result per breast" not in page and "label-research" not in page
    assert 'data-ai-call="not_shown"' in page and 'data-ai-call="no_call"' not in page and 'value="impression"' in page
    assert client.get(f"/images/{image.pk}/overlay/").status_code == 404
    assert client.get(f"/studies/{study.pk}/status.json").json()["images"][0]["score"] is None
    # The read cannot be submitted before the impression.
    response = client.post(f"/reading/reads/{read.pk}/", form_data(birads=(2, 4), recall=("no", "yes")))
    assert response.status_code == 400 and "Record your first impression first" in html(response)

    response = client.post(
        f"/reading/reads/{read.pk}/", {**form_data(birads=(2, 4), recall=("no", "yes")), "action": "impression"}
    )
    assert response.status_code == 302
    read.refresh_from_db()
    assert read.first_impression == {"R": {"birads": 2, "recall": False}, "L": {"birads": 4, "recall": True}}
    assert read.first_impression_at is not None and not read.ai_locked and not read.is_submitted
    event = AuditEvent.objects.get(action="read.first_impression", study_id=study.pk)
    assert event.actor_id == ann.pk and event.details["breasts"]["L"] == {"birads": 4, "recall": True}

    page = html(client.get(f"/reading/reads/{read.pk}/"))
    ai = viewer_data(page)["ai"]
    assert ai["available"] and not ai["locked"] and not ai["on"]  # now behind the switch
    assert "/overlay/" in page and "AI result per breast" in page and 'data-ai-call="no_call"' in page
    assert re.search(r'<option value="4" selected>', page)  # the form starts from the first impression
    assert "First impression recorded" in page
    assert client.get(f"/images/{image.pk}/overlay/").status_code == 200
    with pytest.raises(ApplicationError, match="already recorded"):
        reading.read_first_impression_record(read_id=read.pk, user=ann, impressions=both())
    final = form_data(birads=(2, 4), recall=("no", "yes"))  # agreement derived: not applicable (not validated)
    assert client.post(f"/reading/reads/{read.pk}/", final).status_code == 302
    read.refresh_from_db()
    assert read.is_submitted and read.ai_reveal == "after_first_impression"


@pytest.mark.django_db
def test_a_first_impression_is_asked_only_where_the_mode_asks_for_it(settings, study, readers):
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)  # on_request
    with pytest.raises(ApplicationError, match="does not ask for a first impression"):
        reading.read_first_impression_record(read_id=read.pk, user=ann, impressions=both())
    settings.AI_REVEAL = "after_first_impression"
    second = claims.read_claim(study_id=study.pk, user=ben)
    with pytest.raises(ApplicationError, match="Only the radiologist holding this read"):
        reading.read_first_impression_record(read_id=second.pk, user=ann, impressions=both())
    with pytest.raises(ApplicationError, match="each imaged breast"):
        reading.read_first_impression_record(read_id=second.pk, user=ben, impressions=both()[:1])
    assert not Read.objects.get(pk=second.pk).first_impression


def test_an_unknown_ai_reveal_setting_stops_the_platform_at_start():
    env = {**os.environ, "AI_REVEAL": "sometimes", "SECRET_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "AI_REVEAL must be on_request, open or after_first_impression" in result.stderr


@pytest.mark.django_db
def test_next_and_previous_study_follow_the_readers_own_reads(technologist, readers, lead):
    from cases.reading.viewer import arbitration_navigation, read_navigation

    ann, ben = readers
    studies = [make_study(technologist, tag=str(n)) for n in (21, 22)]
    reads = [claims.read_claim(study_id=s.pk, user=ann) for s in studies]
    assert read_navigation(user=ann, read=reads[0]) == {"previous": None, "next": f"/reading/reads/{reads[1].pk}/"}
    assert read_navigation(user=ann, read=reads[1]) == {
        "previous": f"/reading/reads/{reads[0].pk}/",
        "next": "/reading/",  # after the last one: the worklist, to take the next study
    }
    for study in studies:
        Study.objects.filter(pk=study.pk).update(status=Study.Status.ARBITRATION)
    assert arbitration_navigation(study=studies[0]) == {
        "previous": None,
        "next": f"/reading/studies/{studies[1].pk}/arbitrate/",
    }


@pytest.mark.django_db
def test_after_first_impression_the_ai_is_kept_from_the_worklist_and_study_page_too(
    client, settings, study, readers, active_model
):
    settings.AI_REVEAL = "after_first_impression"
    analyse(study)
    ann, _ = readers
    client.force_login(ann)
    # Before claiming (the reader could still take a read): no AI score, not even as a sort order.
    page = html(client.get("/reading/"))
    assert "AI suspicion" not in page and "Highest AI suspicion first" not in page
    assert "label-" not in html(client.get(f"/studies/{study.pk}/"))
    read = claims.read_claim(study_id=study.pk, user=ann)
    rows = client.get("/reading/?queue=in_progress").context["rows"]
    assert [r.study.pk for r in rows] == [study.pk] and rows[0].ai_suspicion is None
    assert "label-" not in html(client.get(f"/studies/{study.pk}/"))
    reading.read_first_impression_record(read_id=read.pk, user=ann, impressions=both())
    assert "label-" in html(client.get(f"/studies/{study.pk}/"))
