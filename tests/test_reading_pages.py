"""The reading pages: worklist, claim and assign, the reading page, blinding in the HTML, arbitration, addenda,
outcomes, and the AI kept out of view when readers read without it."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from cases.models import BreastAssessment, Image, Outcome, Patient, Read, ReadAddendum, Study
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.services import AssessmentInput
from cases.studies import selectors
from tests.conftest import make_user
from tests.test_reading import both, make_study

SECRET = "Ann-private-comment-7731"


@pytest.fixture
def readers(db):
    return make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")


@pytest.fixture
def study(technologist):
    return make_study(technologist)


def analyse(study: Study) -> None:
    """Run the study's analyses in-process with the active (tiny, real) model: no worker needed."""
    from inference.models import InferenceJob
    from inference.serving.pipeline import inference_job_run

    for job in InferenceJob.objects.filter(image__study=study):
        inference_job_run(job_id=job.pk)


VALIDATED_CARD = {
    "metrics": {"test": {"tasks": {"malignant_vs_benign": {"auc": 0.91, "auc_ci95": [0.86, 0.95]}}}},
}


def ai_says(study: Study, model, *, positive: str, validated: bool = True) -> None:
    """Analyse the study with the (real, tiny) active model, then set what its call is: positive on the breasts in
    `positive`, negative on the others; validated or not by its card's test figures."""
    from inference.models import Prediction

    analyse(study)
    model.card = VALIDATED_CARD if validated else {}
    model.save(update_fields=["card"])
    for prediction in Prediction.objects.filter(image__study=study).select_related("image"):
        hit = prediction.image.laterality in positive
        prediction.probability = 0.9 if hit else 0.1
        prediction.label = "malignant" if hit else "benign"
        prediction.threshold = 0.5
        prediction.save(update_fields=["probability", "label", "threshold"])


def form_data(*, recall=("no", "no"), birads=(1, 1), comments="", density="b", **extra) -> dict:
    data = {"comments": comments, "density": density}
    for side, r, b in zip("RL", recall, birads, strict=True):
        data[f"{side}-birads"] = str(b)
        data[f"{side}-recall"] = r
    data.update(extra)
    return data


# For bulk_studies' studies: the AI result is on the left breast, from a model that is not validated (no call: the
# agreement is derived as not applicable).
AGREE_LEFT = [
    AssessmentInput(laterality="R", birads=1, recall=False),
    AssessmentInput(laterality="L", birads=1, recall=False),
]


def html(response) -> str:
    return response.content.decode()


def viewer_data(page: str) -> dict:
    """The reading viewer's configuration (json_script) in a page."""
    import json
    import re

    found = re.search(r'<script id="mammo-viewer-config" type="application/json">(.*?)</script>', page, re.S)
    assert found, "no viewer on this page"
    return json.loads(found.group(1))


def bulk_studies(n: int, *, user, tag: str) -> None:
    """n readable studies with two images each and an AI result on one, written straight to the database (the
    query-count test needs many studies fast; upload is tested elsewhere)."""
    from inference.models import InferenceJob, ModelVersion, Prediction

    version = ModelVersion.objects.create(
        name=f"bulk-{tag}", backbone="b0", input_size=64, file="x.keras", file_sha256="0" * 64,
        preprocessing_version="1",
    )  # fmt: skip
    for i in range(n):
        patient = Patient.objects.create(patient_id=f"Q{tag}-{i}")
        study = Study.objects.create(
            patient=patient, accession_number=f"ACC-{tag}-{i}", status=Study.Status.AWAITING_READS, created_by=user
        )
        for side in "RL":
            image = Image.objects.create(
                study=study, original_filename=f"{side}.dcm", original="o", sha256=uuid.uuid4().hex * 2,
                size_bytes=1, source_format="dicom", preview="p", laterality=side, view="CC", rows=256,
                columns=192, bits_stored=16, photometric_interpretation="MONOCHROME2", uploaded_by=user,
            )  # fmt: skip
        job = InferenceJob.objects.create(image=image, model_version=version, status=InferenceJob.Status.SUCCEEDED)
        Prediction.objects.create(
            job=job, image=image, model_version=version, probability=i / (n + 1), raw_probability=0.5,
            threshold=0.5, label="benign", heatmap="h", overlay="v", input_sha256="0" * 64,
        )  # fmt: skip


# ------------------------------------------------------------------------------------------------------ access


def _urls(study, read):
    return [
        ("get", "/reading/"),
        ("post", f"/reading/studies/{study.pk}/claim/"),
        ("post", f"/reading/studies/{study.pk}/assign/"),
        ("get", f"/reading/studies/{study.pk}/arbitrate/"),
        ("post", f"/reading/studies/{study.pk}/outcomes/"),
        ("get", f"/reading/reads/{read.pk}/"),
        ("post", f"/reading/reads/{read.pk}/addenda/"),
    ]


@pytest.mark.django_db
def test_it_sends_signed_out_users_to_the_login_page(client, study, readers):
    read = claims.read_claim(study_id=study.pk, user=readers[0])
    for method, url in _urls(study, read):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["technologist", "auditor", "admin_user"])
def test_it_refuses_every_reading_page_to_roles_without_reads(client, study, readers, role_fixture, request):
    read = claims.read_claim(study_id=study.pk, user=readers[0])
    client.force_login(request.getfixturevalue(role_fixture))
    for method, url in _urls(study, read):
        assert getattr(client, method)(url).status_code == 403, url
    assert not Read.objects.exclude(pk=read.pk).exists()


@pytest.mark.django_db
def test_it_refuses_lead_only_pages_to_a_radiologist(client, study, readers):
    ann, ben = readers
    client.force_login(ann)
    assert client.get(f"/reading/studies/{study.pk}/arbitrate/").status_code == 403
    assert client.post(f"/reading/studies/{study.pk}/assign/", {"reader": ben.pk}).status_code == 403
    response = client.post(f"/reading/studies/{study.pk}/outcomes/", {"laterality": "L", "truth": "benign"})
    assert response.status_code == 403
    assert client.get("/reading/?queue=arbitration").status_code == 403
    assert not Read.objects.exists() and not Outcome.objects.exists()


@pytest.mark.django_db
def test_it_refuses_another_radiologists_read_page_and_addenda(client, study, readers, lead):
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both(), comments=SECRET)
    for user in (ben, lead):
        client.force_login(user)
        response = client.get(f"/reading/reads/{read.pk}/")
        assert response.status_code == 403 and SECRET not in html(response)
        assert client.post(f"/reading/reads/{read.pk}/", form_data()).status_code == 403
        assert client.post(f"/reading/reads/{read.pk}/addenda/", {"text": "not mine"}).status_code == 403
    assert not ReadAddendum.objects.exists()
    assert client.get("/reading/reads/999999/").status_code == 404


@pytest.mark.django_db
def test_it_links_the_worklist_in_the_navigation_for_readers_only(client, technologist, radiologist):
    client.force_login(radiologist)
    assert 'href="/reading/"' in html(client.get("/studies/"))
    client.force_login(technologist)
    assert 'href="/reading/"' not in html(client.get("/studies/"))


# ---------------------------------------------------------------------------------------------------- worklist


@pytest.mark.django_db
def test_it_shows_queues_with_counts_and_claims_from_the_worklist(client, study, readers):
    ann, _ = readers
    client.force_login(ann)
    page = html(client.get("/reading/"))
    assert "Awaiting first read" in page and "Completed by me" in page and "Awaiting arbitration" not in page
    assert f'data-study="{study.pk}"' in page and study.patient.patient_id in page
    assert '<span class="count">1</span>' in page
    assert f'action="/reading/studies/{study.pk}/claim/"' in page and "csrfmiddlewaretoken" in page

    response = client.post(f"/reading/studies/{study.pk}/claim/")
    read = Read.objects.get(study=study, reader=ann)
    assert response.status_code == 302 and response["Location"] == f"/reading/reads/{read.pk}/"
    page = html(client.get("/reading/?queue=in_progress"))
    assert f'href="/reading/reads/{read.pk}/"' in page and "Continue" in page


@pytest.mark.django_db
def test_it_shows_the_arbitration_queue_to_leads(client, lead):
    client.force_login(lead)
    page = html(client.get("/reading/?queue=arbitration"))
    assert "Awaiting arbitration" in page and "No studies in this queue" in page


@pytest.mark.django_db
def test_it_searches_sorts_by_suspicion_and_paginates(client, technologist, radiologist):
    bulk_studies(30, user=technologist, tag="s")
    client.force_login(radiologist)
    first = client.get("/reading/")
    assert first.context["page"].paginator.count == 30 and len(first.context["rows"]) == 25
    assert "page=2" in html(first)
    assert len(client.get("/reading/?page=2").context["rows"]) == 5
    rows = client.get("/reading/?search=ACC-s-17").context["rows"]
    assert [r.study.accession_number for r in rows] == ["ACC-s-17"]
    rows = client.get("/reading/?sort=suspicion").context["rows"]
    suspicion = [r.ai_suspicion for r in rows]
    assert suspicion == sorted(suspicion, reverse=True) and suspicion[0] == pytest.approx(29 / 31)


@pytest.mark.django_db
def test_it_puts_studies_without_ai_last_when_sorting_by_suspicion(client, technologist, radiologist):
    bulk_studies(2, user=technologist, tag="n")
    without_ai = make_study(technologist)
    client.force_login(radiologist)
    rows = client.get("/reading/?sort=suspicion").context["rows"]
    assert rows[-1].study.pk == without_ai.pk and rows[0].ai_suspicion is not None


@pytest.mark.django_db
def test_it_runs_the_same_number_of_queries_for_3_and_30_studies(client, technologist, radiologist):
    def queries_for(url: str) -> int:
        client.get(url)  # warm up (session, content types)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    client.force_login(radiologist)
    bulk_studies(3, user=technologist, tag="a")
    for i, study in enumerate(Study.objects.all()[:2]):  # some reads of the user's own, in progress and done
        read = claims.read_claim(study_id=study.pk, user=radiologist)
        if i == 0:
            reading.read_submit(density="b", read_id=read.pk, user=radiologist, assessments=AGREE_LEFT)
    urls = ["/reading/", "/reading/?sort=suspicion", "/reading/?queue=in_progress", "/reading/?queue=completed"]
    few = {url: queries_for(url) for url in urls}
    bulk_studies(27, user=technologist, tag="b")
    for study in Study.objects.filter(accession_number__startswith="ACC-b-")[:10]:
        read = claims.read_claim(study_id=study.pk, user=radiologist)
        reading.read_submit(density="b", read_id=read.pk, user=radiologist, assessments=AGREE_LEFT)
    many = {url: queries_for(url) for url in urls}
    assert few == many, (few, many)
    assert len(client.get("/reading/?queue=completed").context["rows"]) == 11


# ---------------------------------------------------------------------------------------------- reading a study


@pytest.mark.django_db
def test_it_reads_a_study_from_claim_to_a_concordant_final(client, study, readers):
    ann, ben = readers
    client.force_login(ann)
    read = claims.read_claim(study_id=study.pk, user=ann)
    page = html(client.get(f"/reading/reads/{read.pk}/"))
    assert "5: Highly suggestive of malignancy" in page and "0: Incomplete" in page
    assert "6: Known biopsy" not in page and "3: Probably benign" not in page  # not screening outcomes
    assert 'name="R-birads"' in page and 'name="L-birads"' in page and 'name="R-mark_row"' in page
    # The viewer (issue 13): its modules, and its data as JSON, not in an inline script.
    assert "csrfmiddlewaretoken" in page and 'src="/static/viewer/main.js"' in page
    assert "<script>" not in page  # no inline script
    config = viewer_data(page)
    assert config["markable"] and config["marks"] == [] and not config["ai"]["available"]
    assert {(i["laterality"], i["view"]) for i in config["studies"][0]["images"]} == {("R", "CC"), ("L", "CC")}
    assert all(i["pixelsUrl"] == f"/images/{i['id']}/pixels/" for i in config["studies"][0]["images"])
    assert 'name="R-ai_agreement"' not in page  # no AI for this study

    response = client.post(f"/reading/reads/{read.pk}/", form_data(comments="Both clear."))
    assert response.status_code == 302
    read.refresh_from_db()
    assert read.is_submitted and read.comments == "Both clear." and read.recall is False
    page = html(client.get(f"/reading/reads/{read.pk}/"))
    assert 'id="read-form"' not in page and "BI-RADS 1" in page and "Add addendum" in page

    client.force_login(ben)
    client.post(f"/reading/studies/{study.pk}/claim/")
    second = Read.objects.get(study=study, reader=ben)
    assert second.kind == "second"
    client.post(f"/reading/reads/{second.pk}/", form_data())
    study.refresh_from_db()
    assert study.status == Study.Status.FINAL and study.final_recall is False


@pytest.mark.django_db
def test_it_shows_the_services_validation_errors_on_the_form(client, study, readers):
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    client.force_login(ann)
    image = study.images.get(laterality="R")
    outside = form_data(**{"R-mark_image": image.pk, "R-mark_row": 9999, "R-mark_column": 10})
    response = client.post(f"/reading/reads/{read.pk}/", outside)
    assert response.status_code == 400 and "the mark lies outside the image" in html(response)
    missing = form_data()
    del missing["L-birads"]
    response = client.post(f"/reading/reads/{read.pk}/", missing)
    assert response.status_code == 400 and "This field is required" in html(response)
    read.refresh_from_db()
    assert not read.is_submitted


@pytest.mark.django_db
def test_it_stores_the_mark_in_original_pixels_and_shows_it(client, study, readers):
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    client.force_login(ann)
    image = study.images.get(laterality="L")  # 256 rows x 192 columns
    data = form_data(
        recall=("no", "yes"), birads=(1, 4), **{"L-mark_image": image.pk, "L-mark_row": 128, "L-mark_column": 48}
    )
    assert client.post(f"/reading/reads/{read.pk}/", data).status_code == 302
    assessment = BreastAssessment.objects.get(read=read, laterality="L")
    assert (assessment.mark_image_id, assessment.mark_row, assessment.mark_column) == (image.pk, 128, 48)
    page = html(client.get(f"/reading/reads/{read.pk}/"))
    # Drawn by the viewer from original pixels (it was a percent-positioned span before issue 13).
    assert viewer_data(page)["marks"] == [
        {"image": image.pk, "row": 128.0, "column": 48.0, "label": "1", "title": "First read (ann): BI-RADS 4"}
    ]
    assert "row 128, column 48" in page


@pytest.mark.django_db
def test_it_adds_an_addendum_to_a_submitted_read(client, study, readers):
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    client.force_login(ann)
    response = client.post(f"/reading/reads/{read.pk}/addenda/", {"text": "too early"})
    assert response.status_code == 302 and not ReadAddendum.objects.exists()  # not submitted yet: refused
    client.post(f"/reading/reads/{read.pk}/", form_data())
    client.post(f"/reading/reads/{read.pk}/addenda/", {"text": "Left: benign calcifications, no action."})
    assert ReadAddendum.objects.get().text == "Left: benign calcifications, no action."
    assert "Left: benign calcifications, no action." in html(client.get(f"/reading/reads/{read.pk}/"))
    client.post(f"/reading/reads/{read.pk}/", form_data(recall=("yes", "yes"), birads=(4, 4)))
    assert not BreastAssessment.objects.filter(read=read, recall=True).exists()  # immutable


# ---------------------------------------------------------------------------------------------------- blinding


@pytest.mark.django_db
def test_it_keeps_the_first_read_out_of_the_second_readers_pages_until_they_submit(client, study, readers, lead):
    ann, ben = readers
    first = claims.read_claim(study_id=study.pk, user=ann)
    image = study.images.get(laterality="L")
    reading.read_submit(
        density="b",
        read_id=first.pk,
        user=ann,
        assessments=[
            AssessmentInput(laterality="R", birads=1, recall=False),
            AssessmentInput(laterality="L", birads=5, recall=True, mark_image_id=image.pk, mark_row=30, mark_column=40),
        ],
        comments=SECRET,
    )
    client.force_login(ben)
    second_pages = ["/reading/", "/reading/?queue=awaiting_second", f"/studies/{study.pk}/", f"/images/{image.pk}/"]
    for url in second_pages:
        page = html(client.get(url))
        assert SECRET not in page and "BI-RADS 5" not in page and 'data-read-kind="first"' not in page, url
        assert 'class="mark"' not in page, url
    client.post(f"/reading/studies/{study.pk}/claim/")
    second = Read.objects.get(study=study, reader=ben)
    for url in [*second_pages, f"/reading/reads/{second.pk}/", "/reading/?queue=in_progress"]:
        page = html(client.get(url))
        assert SECRET not in page and "BI-RADS 5" not in page and 'data-read-kind="first"' not in page, url
        assert 'class="mark"' not in page, url
    assert viewer_data(html(client.get(f"/reading/reads/{second.pk}/")))["marks"] == []  # nor the viewer's data
    assert client.get(f"/reading/reads/{first.pk}/").status_code == 403
    # The lead, who might still take a read, is blind too.
    client.force_login(lead)
    page = html(client.get(f"/studies/{study.pk}/"))
    assert SECRET not in page and "BI-RADS 5" not in page

    client.force_login(ben)
    client.post(f"/reading/reads/{second.pk}/", form_data())
    page = html(client.get(f"/studies/{study.pk}/"))
    assert SECRET in page and "BI-RADS 5" in page and 'data-read-kind="first"' in page
    assert 'class="mark"' in page  # the first reader's mark, now visible


# ------------------------------------------------------------------------------------------------- arbitration


@pytest.mark.django_db
def test_it_arbitrates_a_discordant_study(client, study, readers, lead):
    ann, ben = readers
    first = claims.read_claim(study_id=study.pk, user=ann)
    second = claims.read_claim(study_id=study.pk, user=ben)
    reading.read_submit(density="b", read_id=first.pk, user=ann, assessments=both(recall_left=True), comments=SECRET)
    client.force_login(ben)
    client.post(f"/reading/reads/{second.pk}/", form_data(comments="Ben sees nothing."))
    study.refresh_from_db()
    assert study.status == Study.Status.ARBITRATION

    client.force_login(lead)
    assert f'data-study="{study.pk}"' in html(client.get("/reading/?queue=arbitration"))
    assert f'href="/reading/studies/{study.pk}/arbitrate/"' in html(client.get(f"/studies/{study.pk}/"))
    page = html(client.get(f"/reading/studies/{study.pk}/arbitrate/"))
    assert SECRET in page and "Ben sees nothing." in page
    assert 'data-read-kind="first"' in page and 'data-read-kind="second"' in page
    assert "Final decision" in page and 'name="L-birads"' in page and "csrfmiddlewaretoken" in page
    response = client.post(f"/reading/studies/{study.pk}/arbitrate/", form_data(recall=("no", "yes"), birads=(1, 4)))
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.status == Study.Status.FINAL and study.final_recall is True
    arbitration = Read.objects.get(study=study, kind="arbitration")
    assert arbitration.reader == lead
    # Done: the page sends the lead back to the study, which shows all three reads.
    assert client.get(f"/reading/studies/{study.pk}/arbitrate/").status_code == 302
    assert 'data-read-kind="arbitration"' in html(client.get(f"/studies/{study.pk}/"))


@pytest.mark.django_db
def test_it_refuses_the_arbitration_page_to_a_lead_who_gave_one_of_the_reads(client, study, readers, lead):
    ann, _ = readers
    first = claims.read_claim(study_id=study.pk, user=ann)
    second = claims.read_claim(study_id=study.pk, user=lead)
    reading.read_submit(density="b", read_id=first.pk, user=ann, assessments=both(recall_left=True))
    reading.read_submit(density="b", read_id=second.pk, user=lead, assessments=both())
    client.force_login(lead)
    assert client.get(f"/reading/studies/{study.pk}/arbitrate/").status_code == 403
    assert client.post(f"/reading/studies/{study.pk}/arbitrate/", form_data()).status_code == 403


# -------------------------------------------------------------------------------------- assigning and outcomes


@pytest.mark.django_db
def test_it_lets_a_lead_assign_and_reassign_reads(client, study, readers, lead):
    ann, ben = readers
    carl = make_user(Role.RADIOLOGIST, "carl")
    client.force_login(lead)
    page = html(client.get(f"/studies/{study.pk}/"))
    assert f'action="/reading/studies/{study.pk}/assign/"' in page and "carl" in page
    client.post(f"/reading/studies/{study.pk}/assign/", {"reader": ann.pk})
    first = Read.objects.get(study=study, kind="first")
    assert first.reader == ann and first.assigned_by == lead
    # Ann is away: her unfinished first read goes to Carl, while the second read is still free.
    page = html(client.get(f"/studies/{study.pk}/"))
    assert f'value="{first.pk}"' in page
    client.post(f"/reading/studies/{study.pk}/assign/", {"reader": carl.pk, "read": first.pk})
    first.refresh_from_db()
    assert first.reader == carl and not Read.objects.filter(study=study, kind="second").exists()
    client.post(f"/reading/studies/{study.pk}/assign/", {"reader": ben.pk})
    assert Read.objects.get(study=study, kind="second").reader == ben
    response = client.post(f"/reading/studies/{study.pk}/assign/", {"reader": carl.pk}, follow=True)
    assert "already holds" in html(response)  # the service's rule, shown as a message


@pytest.mark.django_db
def test_it_records_outcomes_and_shows_them_to_leads(client, study, readers, lead):
    ann, _ = readers
    client.force_login(lead)
    assert f'action="/reading/studies/{study.pk}/outcomes/"' in html(client.get(f"/studies/{study.pk}/"))
    data = {"laterality": "L", "truth": "malignant", "note": "Core biopsy: invasive ductal carcinoma"}
    assert client.post(f"/reading/studies/{study.pk}/outcomes/", data).status_code == 302
    outcome = Outcome.objects.get(study=study)
    assert (outcome.laterality, outcome.truth, outcome.recorded_by) == ("L", "malignant", lead)
    page = html(client.get(f"/studies/{study.pk}/"))
    assert "Biopsy-proven malignant" in page and "Core biopsy: invasive ductal carcinoma" in page
    # A radiologist who may still read the study does not see the ground truth.
    client.force_login(ann)
    assert "invasive ductal carcinoma" not in html(client.get(f"/studies/{study.pk}/"))


# ---------------------------------------------------------------------------------------------------------- AI


@pytest.mark.django_db
def test_it_shows_the_ai_and_derives_agreement_when_readers_see_it(client, study, readers, active_model):
    ai_says(study, active_model, positive="L")
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    assert read.ai_available
    client.force_login(ann)
    page = html(client.get(f"/reading/reads/{read.pk}/"))
    # One AI switch for every view (issue 13), off when the read opens (AI_REVEAL on_request, the default), with the
    # per-breast result beside the images (shown by the same switch).
    ai = viewer_data(page)["ai"]
    assert ai["available"] and not ai["on"] and not ai["locked"]
    assert read.ai_reveal == "on_request"
    assert all(i["overlayUrl"] for i in viewer_data(page)["studies"][0]["images"])
    assert "AI result per breast" in page and "<div data-ai-panel hidden>" in page
    # Agreement is not clicked: it follows from BI-RADS and the AI's call; a reason is asked for an override.
    assert 'name="R-ai_agreement"' not in page and 'name="L-override_reason"' in page
    response = client.post(f"/reading/reads/{read.pk}/", form_data())  # BI-RADS 1 both: overrides the left call
    assert response.status_code == 400 and "overrides the AI&#x27;s positive call: a reason is required" in html(
        response
    )
    with_reason = {**form_data(), "L-override_reason": "Benign calcifications"}
    assert client.post(f"/reading/reads/{read.pk}/", with_reason).status_code == 302
    assessment = BreastAssessment.objects.get(read=read, laterality="L")
    assert assessment.ai_agreement == "override" and assessment.override_reason == "Benign calcifications"
    assert BreastAssessment.objects.get(read=read, laterality="R").ai_agreement == "agree"


@pytest.mark.django_db
def test_it_keeps_the_ai_out_of_every_page_when_readers_read_without_it(
    client, settings, study, readers, lead, active_model
):
    settings.READERS_SEE_AI = False
    analyse(study)
    ann, ben = readers
    image = study.images.get(laterality="L")
    probability = f"{image.predictions.get().probability:.3f}"
    # Before claiming: a radiologist who may still read it does not see it either (nor in the worklist).
    client.force_login(ann)
    page = html(client.get("/reading/"))
    assert "AI suspicion" not in page and "Highest AI suspicion first" not in page
    read = claims.read_claim(study_id=study.pk, user=ann)
    assert read.ai_available is False
    assert selectors.image_current_prediction(selectors.image_get(user=ann, pk=image.pk), user=ann) is None
    assert selectors.image_current_prediction(selectors.image_get(user=lead, pk=image.pk), user=lead) is None
    for url in [f"/reading/reads/{read.pk}/", f"/studies/{study.pk}/", f"/images/{image.pk}/"]:
        page = html(client.get(url))
        assert 'class="overlay"' not in page and "/overlay/" not in page and "AI result per breast" not in page, url
        assert "label-benign" not in page and "label-malignant" not in page and f"p = {probability}" not in page, url
    assert 'name="R-ai_agreement"' not in html(client.get(f"/reading/reads/{read.pk}/"))
    assert client.get(f"/images/{image.pk}/overlay/").status_code == 404
    assert client.get(f"/studies/{study.pk}/status.json").json()["images"][0]["score"] is None

    # Once the read is in, the AI is there again (for the others: once both reads are taken).
    client.post(f"/reading/reads/{read.pk}/", form_data())
    assert selectors.image_current_prediction(selectors.image_get(user=ann, pk=image.pk), user=ann) is not None
    claims.read_claim(study_id=study.pk, user=ben)
    assert selectors.image_current_prediction(selectors.image_get(user=lead, pk=image.pk), user=lead) is not None
    assert "label-" in html(client.get(f"/images/{image.pk}/"))
    assert client.get(f"/images/{image.pk}/overlay/").status_code == 200


@pytest.mark.django_db
def test_it_keeps_the_ai_hidden_for_a_read_claimed_without_it_even_after_the_setting_changes(
    client, settings, study, readers, active_model
):
    settings.READERS_SEE_AI = False
    analyse(study)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    settings.READERS_SEE_AI = True
    client.force_login(ann)
    page = html(client.get(f"/reading/reads/{read.pk}/"))
    assert 'class="overlay"' not in page and 'name="R-ai_agreement"' not in page
    assert "label-" not in html(client.get(f"/studies/{study.pk}/"))
    rows = client.get("/reading/?queue=in_progress").context["rows"]
    assert [r.study.pk for r in rows] == [study.pk] and rows[0].ai_suspicion is None


# ------------------------------------------------------------------------------------------------------ browser


@pytest.mark.browser
def test_it_places_a_mark_by_clicking_and_reads_in_the_browser(
    live_server, technologist, readers, active_model, monkeypatch, browser
):
    from tests.browser import check_accessibility, screenshot, sign_in
    from tests.conftest import PASSWORD, wait_for

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    monkeypatch.setattr("core.outbox.outbox_relay", lambda **kwargs: 0)  # nothing sent: analysed in-process below
    study = make_study(technologist, tag="77")
    ai_says(study, active_model, positive="R")
    ann, _ = readers
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, live_server.url, ann.username, PASSWORD)
    page.goto(f"{live_server.url}/reading/")
    page.click(f'tr[data-study="{study.pk}"] button')
    page.wait_for_url("**/reading/reads/*/")

    page.wait_for_selector("[data-mammo-viewer][data-state=ready]")
    image = study.images.get(laterality="L")
    # The AI: one switch for every view, off when the read opens; one opacity for all heatmaps.
    assert page.locator(".mv-heatmap[src]").count() == 0
    page.keyboard.press("a")
    page.wait_for_selector(".mv-heatmap[src]")
    page.fill('[data-control="opacity"]', "80")
    page.dispatch_event('[data-control="opacity"]', "input")
    assert page.eval_on_selector(".mv-heatmap", "el => getComputedStyle(el).opacity") == "0.8"

    # The mark tool; a click at a quarter of the drawn image's width and half of its height = column 48, row 128 of
    # the 192 x 256 original (the left breast, stored with its chest wall on the left: not flipped).
    cell = page.locator(f'.mv-cell[data-image="{image.pk}"]')
    assert cell.get_attribute("data-flip-horizontal") == "false"
    box = cell.bounding_box()
    left, top, width, height = (float(v) for v in cell.get_attribute("data-box").split(","))
    page.keyboard.press("m")
    page.mouse.click(box["x"] + left + width / 4, box["y"] + top + height / 2)
    assert page.input_value('input[name="L-mark_image"]') == str(image.pk)
    assert float(page.input_value('input[name="L-mark_column"]')) == pytest.approx(48, abs=1)
    assert float(page.input_value('input[name="L-mark_row"]')) == pytest.approx(128, abs=1)
    assert cell.locator(".mv-mark-draft").count() == 1
    page.click('button.clear-mark[data-side="L"]')
    assert page.input_value('input[name="L-mark_image"]') == ""
    assert page.locator(".mv-mark-draft").count() == 0
    page.mouse.click(box["x"] + left + width / 4, box["y"] + top + height / 2)

    # Recall and agreement follow from BI-RADS and the AI's call (here: right positive, left negative), shown as
    # they change (reading_form.js); the reason box appears only for an override.
    page.select_option('select[name="R-birads"]', "1")
    assert page.text_content('output[data-recall-for="R"]') == "routine screening (no recall)"
    assert page.text_content('output[data-agreement-for="R"]') == "Override the AI: give your reason"
    assert page.is_visible('textarea[name="R-override_reason"]')
    page.select_option('select[name="R-birads"]', "0")
    assert page.text_content('output[data-recall-for="R"]') == "recall for assessment"
    assert page.text_content('output[data-agreement-for="R"]') == "Agree with the AI"
    assert not page.is_visible('textarea[name="R-override_reason"]')
    page.select_option('select[name="L-birads"]', "4")
    assert page.text_content('output[data-agreement-for="L"]') == "Override the AI: give your reason"
    assert page.get_attribute('textarea[name="L-override_reason"]', "required") is not None
    page.fill('textarea[name="L-override_reason"]', "Spiculated mass the AI missed")
    # The form is saved as a draft as the reader goes (debounced); leaving and coming back restores it, mark included.
    page.wait_for_selector("[data-draft-status]:has-text('Draft saved')")
    read = Read.objects.get(reader=ann, study=study)

    def draft_has_the_reason():
        read.refresh_from_db()
        return (read.draft or {}).get("L-override_reason") == "Spiculated mass the AI missed"

    wait_for(draft_has_the_reason, timeout=10)
    assert read.draft["R-birads"] == "0" and read.draft["L-mark_image"] == str(image.pk)
    page.goto(f"{live_server.url}/reading/")
    page.goto(f"{live_server.url}/reading/reads/{read.pk}/")
    page.wait_for_selector("[data-mammo-viewer][data-state=ready]")
    assert page.input_value('select[name="R-birads"]') == "0" and page.input_value('select[name="L-birads"]') == "4"
    assert page.input_value('textarea[name="L-override_reason"]') == "Spiculated mass the AI missed"
    assert page.is_visible('textarea[name="L-override_reason"]')
    assert page.input_value('input[name="L-mark_image"]') == str(image.pk)
    assert page.locator(f'.mv-cell[data-image="{image.pk}"] .mv-mark-draft').count() == 1
    page.check('input[name="density"][value="b"]')  # breast density, required in every read
    screenshot(page, "reading-form")
    check_accessibility(page, "reading-form")
    page.click("#read-form button[type=submit]")
    page.wait_for_selector("text=Your read")
    assessment = BreastAssessment.objects.get(read__reader=ann, laterality="L")
    assert assessment.mark_image_id == image.pk and assessment.mark_column == pytest.approx(48, abs=1)
    page.wait_for_selector("[data-mammo-viewer][data-state=ready]")
    assert page.locator(f'.mv-cell[data-image="{image.pk}"] .mv-mark-read').count() == 1
    screenshot(page, "reading-submitted")
    check_accessibility(page, "reading-submitted")
