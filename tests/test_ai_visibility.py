"""The one AI-visibility rule (cases/ai_visibility.py), as a table of roles x read states x reveal modes, checked on
the rule itself and on every surface that carries the AI: the study page, the image page, the study API, the
heatmap file URL (page and API), the study's status poll, the DICOM results API and DICOMweb, and the read page.

The expectations are written out by hand below (not computed by the rule): a patient-safety rule is tested against
what people agreed it must do."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from cases.ai_visibility import ai_access
from cases.models import Read, Study
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.worklist import Queue, queue_ai_access
from tests.conftest import api_client_for, make_user
from tests.test_reading import both, make_study
from tests.test_reading_pages import viewer_data

# (READERS_SEE_AI, AI_REVEAL) at the time reads are claimed and pages are opened.
MODES = {
    "on_request": (True, "on_request"),
    "open": (True, "open"),
    "after_first_impression": (True, "after_first_impression"),
    "unaided": (False, "on_request"),
}
# What the radiologist (who reads) meets, per read state and mode: (on study pages, on their read's page).
# "none": no read of theirs, a read slot free; "claimed": their read in progress; "impression": in progress with
# their first impression recorded (only a mode that asks for one); "submitted".
RADIOLOGIST = {
    ("none", "on_request"): ("shown", None),
    ("none", "open"): ("shown", None),
    ("none", "after_first_impression"): ("hidden", None),  # a look before claiming would make the read aided
    ("none", "unaided"): ("hidden", None),
    ("claimed", "on_request"): ("shown", "shown"),
    ("claimed", "open"): ("shown", "shown"),
    ("claimed", "after_first_impression"): ("hidden", "locked"),
    ("claimed", "unaided"): ("hidden", "hidden"),
    ("impression", "after_first_impression"): ("shown", "shown"),
    ("submitted", "on_request"): ("shown", "shown"),
    ("submitted", "open"): ("shown", "shown"),
    ("submitted", "after_first_impression"): ("shown", "shown"),
    ("submitted", "unaided"): ("shown", "hidden"),  # the read stays as it was given: unaided
}
# Roles that never see the AI, whatever the mode; the lead (who could also read) meets it as a radiologist without
# a read does.
NEVER = (Role.TECHNOLOGIST, Role.AUDITOR, Role.ADMIN)


@pytest.fixture
def site(db, technologist):
    """A study awaiting reads whose two images have an AI result (written as the worker writes it: a succeeded job,
    a Prediction and its heatmap files), from a model row that is not validated. No network runs: this is about
    who sees the result, not how it is made."""
    from django.utils import timezone

    from core import storage
    from inference.models import InferenceJob, ModelVersion, Prediction
    from tests.dicom_factory import make_png

    study = make_study(technologist, tag="77")
    model = ModelVersion.objects.create(name="visibility-test", backbone="custom", input_size=64, file="m.keras",
                                        file_sha256="ab" * 32, preprocessing_version="1", is_active=True,
                                        status="active")  # fmt: skip
    for image in study.images.all():
        InferenceJob.objects.filter(image=image).delete()
        job = InferenceJob.objects.create(image=image, model_version=model, status="succeeded",
                                          finished_at=timezone.now())  # fmt: skip
        heatmap, overlay = storage.heatmap_names(image.sha256, model.file_sha256)
        storage.put(heatmap, make_png(), overwrite=True)
        storage.put(overlay, make_png(), overwrite=True)
        Prediction.objects.create(job=job, image=image, model_version=model, probability=0.7, raw_probability=0.7,
                                  threshold=0.5, label="malignant", heatmap=heatmap, overlay=overlay,
                                  heatmap_peak={"row": 10, "column": 10}, input_sha256=image.sha256)  # fmt: skip
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    return Study.objects.get(pk=study.pk)


def _prepare(study: Study, reader, state: str) -> Read | None:
    if state == "none":
        return None
    read = claims.read_claim(study_id=study.pk, user=reader)
    if state in ("impression", "submitted") and read.ai_reveal == Read.AiReveal.AFTER_FIRST_IMPRESSION:
        read = reading.read_first_impression_record(read_id=read.pk, user=reader, impressions=both())
    if state == "submitted":
        read = reading.read_submit(density="b", read_id=read.pk, user=reader, assessments=both())
    return read


def _surfaces(client, api, study: Study) -> dict[str, bool]:
    """Whether each surface carried the AI for this user."""
    image = study.images.order_by("pk").first()
    page = client.get(f"/studies/{study.pk}/")
    image_page = client.get(f"/images/{image.pk}/")
    detail = api.get(f"/api/studies/{study.pk}/")
    status = client.get(f"/studies/{study.pk}/status.json")
    results = api.get(f"/api/studies/{study.pk}/dicom-results/")
    found = {
        "study page": page.status_code == 200 and "ai-breasts" in page.content.decode(),
        "image page": image_page.status_code == 200 and "research score" in image_page.content.decode(),
        "study API": detail.status_code == 200 and any(i["prediction"] for i in detail.json()["images"]),
        "breasts API": detail.status_code == 200 and any(b["score"] is not None for b in detail.json()["breasts"]),
        "heatmap page URL": client.get(f"/images/{image.pk}/heatmap/").status_code == 200,
        "heatmap API URL": api.get(f"/api/images/{image.pk}/heatmap/").status_code == 200,
        "status poll": status.status_code == 200 and any(i["score"] is not None for i in status.json()["images"]),
        "DICOM results API": results.status_code == 200 and bool(results.json()),
    }
    return found


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("state", ["none", "claimed", "impression", "submitted"])
def test_a_radiologist_meets_the_ai_exactly_where_the_rule_says(site, client, settings, mode, state):
    if (state, mode) not in RADIOLOGIST:
        pytest.skip(f"a {mode} read asks for no first impression")
    settings.READERS_SEE_AI, settings.AI_REVEAL = MODES[mode]
    reader = make_user(Role.RADIOLOGIST, "ann")
    read = _prepare(site, reader, state)
    on_study, on_read_page = RADIOLOGIST[(state, mode)]
    study = Study.objects.get(pk=site.pk)
    assert ai_access(user=reader, study=study).visibility == on_study
    if read is not None:
        read.refresh_from_db()
        assert ai_access(user=reader, study=study, read=read).visibility == on_read_page
    client.force_login(reader)
    surfaces = _surfaces(client, api_client_for(reader), study)
    assert surfaces == dict.fromkeys(surfaces, on_study == "shown"), surfaces
    if read is not None:
        page = client.get(f"/reading/reads/{read.pk}/").content.decode()
        ai = viewer_data(page)["ai"]
        assert (ai["available"] and not ai["locked"], ai["locked"]) == (
            on_read_page == "shown",
            on_read_page == "locked",
        ), ai
        assert ("ai-breasts" in page) == (on_read_page == "shown")


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("role", NEVER)
def test_roles_without_the_ai_never_meet_it(site, client, settings, mode, role):
    settings.READERS_SEE_AI, settings.AI_REVEAL = MODES[mode]
    user = make_user(role, f"u-{role}")
    study = Study.objects.get(pk=site.pk)
    assert ai_access(user=user, study=study).visibility == "hidden"
    client.force_login(user)
    assert not any(_surfaces(client, api_client_for(user), study).values())


@pytest.mark.parametrize("mode", list(MODES))
def test_a_lead_who_could_read_meets_it_as_a_radiologist_without_a_read(site, client, settings, mode):
    settings.READERS_SEE_AI, settings.AI_REVEAL = MODES[mode]
    lead = make_user(Role.LEAD_RADIOLOGIST, "lea")
    expected = RADIOLOGIST[("none", mode)][0]
    study = Study.objects.get(pk=site.pk)
    assert ai_access(user=lead, study=study).visibility == expected
    client.force_login(lead)
    surfaces = _surfaces(client, api_client_for(lead), study)
    assert surfaces == dict.fromkeys(surfaces, expected == "shown"), surfaces


@pytest.mark.parametrize(
    ("mode", "reading_queues"),
    [("on_request", True), ("open", True), ("after_first_impression", False), ("unaided", False)],
)
def test_worklist_queues_show_the_ai_sort_only_where_reads_may_see_it(db, settings, mode, reading_queues):
    settings.READERS_SEE_AI, settings.AI_REVEAL = MODES[mode]
    reader, technologist = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.TECHNOLOGIST, "tom")
    for queue in (Queue.AWAITING_FIRST, Queue.AWAITING_SECOND, Queue.IN_PROGRESS):
        assert queue_ai_access(user=reader, queue=queue) is reading_queues
    for queue in (Queue.ARBITRATION, Queue.COMPLETED):
        assert queue_ai_access(user=reader, queue=queue) is True
        assert queue_ai_access(user=technologist, queue=queue) is False
