"""The reading API: worklist, claim, reads, submit, addenda, arbitration, outcomes, and the `reads` of a study;
same roles, blinding and AI hiding as the pages."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from cases.models import Outcome, Read, ReadAddendum, Study
from cases.reading import claims
from cases.reading import services as reading
from tests.conftest import api_client_for, make_user
from tests.test_reading import both, make_study
from tests.test_reading_pages import SECRET, ai_says, analyse, bulk_studies


@pytest.fixture
def readers(db):
    return make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")


@pytest.fixture
def study(technologist):
    return make_study(technologist)


def assessments(recall_left=False, **left) -> dict:
    return {
        "density": "b",
        "assessments": [
            {"laterality": "R", "birads": 1, "recall": False},
            {"laterality": "L", "birads": 4 if recall_left else 1, "recall": recall_left, **left},
        ],
    }


def _endpoints(study, read):
    return [
        ("get", "/api/worklist/"),
        ("post", f"/api/studies/{study.pk}/claim/"),
        ("get", f"/api/reads/{read.pk}/"),
        ("post", f"/api/reads/{read.pk}/submit/"),
        ("post", f"/api/reads/{read.pk}/addenda/"),
        ("post", f"/api/studies/{study.pk}/arbitration/"),
        ("post", f"/api/studies/{study.pk}/outcomes/"),
    ]


@pytest.mark.django_db
def test_it_answers_401_without_a_token(client, study, readers):
    read = claims.read_claim(study_id=study.pk, user=readers[0])
    for method, url in _endpoints(study, read):
        assert getattr(client, method)(url).status_code == 401, url


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["technologist", "auditor", "admin_user"])
def test_it_refuses_every_reading_endpoint_to_roles_without_reads(study, readers, role_fixture, request):
    read = claims.read_claim(study_id=study.pk, user=readers[0])
    api = api_client_for(request.getfixturevalue(role_fixture))
    for method, url in _endpoints(study, read):
        assert getattr(api, method)(url, {}, format="json").status_code == 403, url
    assert Read.objects.count() == 1 and not Outcome.objects.exists()


@pytest.mark.django_db
def test_it_refuses_arbitration_and_outcomes_to_a_radiologist(study, readers):
    api = api_client_for(readers[0])
    assert api.post(f"/api/studies/{study.pk}/arbitration/", assessments(), format="json").status_code == 403
    outcome = {"laterality": "L", "truth": "benign"}
    assert api.post(f"/api/studies/{study.pk}/outcomes/", outcome, format="json").status_code == 403
    assert api.get("/api/worklist/?queue=arbitration").status_code == 403
    assert not Outcome.objects.exists()


@pytest.mark.django_db
def test_it_lists_the_worklist_with_counts_and_pages(technologist, radiologist):
    bulk_studies(30, user=technologist, tag="api")
    api = api_client_for(radiologist)
    body = api.get("/api/worklist/").json()
    assert body["count"] == 30 and len(body["results"]) == 25 and body["next"]
    assert body["queue"] == "awaiting_first" and body["sort"] == "oldest"
    assert body["counts"] == {
        "awaiting_first": 30, "awaiting_second": 0, "in_progress": 0, "completed": 0,
    }  # fmt: skip
    row = body["results"][0]
    assert row["action"] == "claim" and row["image_count"] == 2 and row["my_read"] is None
    ranked = api.get("/api/worklist/?sort=suspicion").json()["results"]
    assert ranked[0]["ai_suspicion"] == pytest.approx(29 / 31)
    found = api.get("/api/worklist/?search=ACC-api-7").json()
    assert [r["accession_number"] for r in found["results"]] == ["ACC-api-7"]
    assert api.get("/api/worklist/?sort=nonsense").status_code == 400


@pytest.mark.django_db
def test_it_runs_the_same_number_of_queries_for_3_and_30_studies(technologist, radiologist):
    api = api_client_for(radiologist)

    def queries() -> int:
        api.get("/api/worklist/")
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/worklist/").status_code == 200
        return len(captured.captured_queries)

    bulk_studies(3, user=technologist, tag="q3")
    few = queries()
    bulk_studies(27, user=technologist, tag="q30")
    assert queries() == few


@pytest.mark.django_db
def test_it_claims_submits_and_finalises_concordant_reads(study, readers):
    ann, ben = readers
    api = api_client_for(ann)
    claimed = api.post(f"/api/studies/{study.pk}/claim/")
    assert claimed.status_code == 200
    read = claimed.json()
    assert read["kind"] == "first" and read["status"] == "in_progress" and read["reader"] == "ann"
    assert api.post(f"/api/studies/{study.pk}/claim/").json()["id"] == read["id"]  # resumes
    assert api.get("/api/worklist/?queue=in_progress").json()["results"][0]["my_read"]["id"] == read["id"]

    submit = f"/api/reads/{read['id']}/submit/"
    bad = api.post(
        submit, {"assessments": [{"laterality": "R", "birads": 1, "recall": False}], "density": "b"}, format="json"
    )
    assert bad.status_code == 400 and "each imaged breast" in bad.json()["detail"]
    assert api.post(submit, {"assessments": [{"birads": 9}]}, format="json").status_code == 400
    image = study.images.get(laterality="L")
    body = assessments(mark_image_id=image.pk, mark_row=0, mark_column=0)
    submitted = api.post(f"/api/reads/{read['id']}/submit/", {**body, "comments": "fine"}, format="json")
    assert submitted.status_code == 200, submitted.json()
    data = submitted.json()
    assert data["status"] == "submitted" and data["comments"] == "fine"
    left = next(a for a in data["assessments"] if a["laterality"] == "L")
    assert (left["mark_image_id"], left["mark_row"], left["mark_column"]) == (image.pk, 0, 0)  # row 0 is a pixel
    assert left["birads_name"] == "Negative"
    again = api.post(f"/api/reads/{read['id']}/submit/", assessments(), format="json")
    assert again.status_code == 400 and "addendum" in again.json()["detail"]

    second = api_client_for(ben).post(f"/api/studies/{study.pk}/claim/").json()
    response = api_client_for(ben).post(f"/api/reads/{second['id']}/submit/", assessments(), format="json")
    assert response.status_code == 200
    study.refresh_from_db()
    assert study.status == Study.Status.FINAL and study.final_recall is False


@pytest.mark.django_db
def test_it_refuses_an_ai_agreement_for_a_breast_without_ai(study, readers):
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    response = api_client_for(ann).post(
        f"/api/reads/{read.pk}/submit/", assessments(ai_agreement="agree"), format="json"
    )
    assert response.status_code == 400 and "no AI result was shown" in response.json()["detail"]


@pytest.mark.django_db
def test_it_blinds_the_second_reader_in_the_api_until_they_submit(study, readers, lead):
    ann, ben = readers
    first = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=first.pk, user=ann, assessments=both(recall_left=True), comments=SECRET)
    ben_api = api_client_for(ben)
    for user_api in (ben_api, api_client_for(lead)):
        response = user_api.get(f"/api/studies/{study.pk}/")
        assert response.json()["reads"] == [] and SECRET not in response.content.decode()
        assert user_api.get(f"/api/reads/{first.pk}/").status_code == 404
    second = ben_api.post(f"/api/studies/{study.pk}/claim/").json()
    for url in [f"/api/studies/{study.pk}/", f"/api/reads/{second['id']}/", "/api/worklist/?queue=in_progress"]:
        content = ben_api.get(url).content.decode()
        assert SECRET not in content and '"birads":4' not in content.replace(" ", ""), url
    assert [r["id"] for r in ben_api.get(f"/api/studies/{study.pk}/").json()["reads"]] == [second["id"]]
    assert ben_api.get(f"/api/reads/{first.pk}/").status_code == 404
    assert ben_api.post(f"/api/reads/{first.pk}/submit/", assessments(), format="json").status_code == 404
    assert ben_api.post(f"/api/reads/{first.pk}/addenda/", {"text": "x"}, format="json").status_code == 404

    ben_api.post(f"/api/reads/{second['id']}/submit/", assessments(), format="json")
    reads = ben_api.get(f"/api/studies/{study.pk}/").json()["reads"]
    assert {r["kind"] for r in reads} == {"first", "second"}
    first_seen = ben_api.get(f"/api/reads/{first.pk}/").json()
    assert first_seen["comments"] == SECRET
    assert {a["laterality"]: a["birads"] for a in first_seen["assessments"]} == {"R": 1, "L": 4}


@pytest.mark.django_db
def test_it_gives_no_reads_to_roles_without_reads(study, readers, technologist):
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both(), comments=SECRET)
    response = api_client_for(technologist).get(f"/api/studies/{study.pk}/")
    assert response.json()["reads"] == [] and SECRET not in response.content.decode()


@pytest.mark.django_db
def test_it_arbitrates_a_discordant_study_and_records_an_outcome(study, readers, lead):
    ann, ben = readers
    first = claims.read_claim(study_id=study.pk, user=ann)
    second = claims.read_claim(study_id=study.pk, user=ben)
    reading.read_submit(density="b", read_id=first.pk, user=ann, assessments=both(recall_left=True))
    reading.read_submit(density="b", read_id=second.pk, user=ben, assessments=both())
    api = api_client_for(lead)
    body = api.get("/api/worklist/?queue=arbitration").json()
    assert [r["id"] for r in body["results"]] == [study.pk] and body["results"][0]["action"] == "arbitrate"
    assert {r["kind"] for r in api.get(f"/api/studies/{study.pk}/").json()["reads"]} == {"first", "second"}

    response = api.post(
        f"/api/studies/{study.pk}/arbitration/", {**assessments(recall_left=True), "comments": "Recall left"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "arbitration" and response.json()["recall"] is True
    study.refresh_from_db()
    assert study.status == Study.Status.FINAL and study.final_recall is True
    again = api.post(f"/api/studies/{study.pk}/arbitration/", assessments(), format="json")
    assert again.status_code == 400

    outcome = {"laterality": "L", "truth": "malignant", "note": "Biopsy: DCIS"}
    response = api.post(f"/api/studies/{study.pk}/outcomes/", outcome, format="json")
    assert response.status_code == 201 and response.json()["truth"] == "malignant"
    assert Outcome.objects.get(study=study).note == "Biopsy: DCIS"
    assert api.post(f"/api/studies/{study.pk}/outcomes/", {"laterality": "X"}, format="json").status_code == 400
    assert api.post("/api/studies/999999/outcomes/", outcome, format="json").status_code == 404


@pytest.mark.django_db
def test_it_adds_addenda_to_your_own_submitted_read_only(study, readers):
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    api = api_client_for(ann)
    early = api.post(f"/api/reads/{read.pk}/addenda/", {"text": "early"}, format="json")
    assert early.status_code == 400
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    response = api.post(f"/api/reads/{read.pk}/addenda/", {"text": "Left: cyst."}, format="json")
    assert response.status_code == 201 and response.json()["author"] == "ann"
    assert api.get(f"/api/reads/{read.pk}/").json()["addenda"][0]["text"] == "Left: cyst."
    assert api_client_for(ben).post(f"/api/reads/{read.pk}/addenda/", {"text": "x"}, format="json").status_code == 404
    assert ReadAddendum.objects.count() == 1


@pytest.mark.django_db
def test_it_hides_the_ai_in_the_api_from_a_reader_reading_without_it(settings, study, readers, lead, active_model):
    settings.READERS_SEE_AI = False
    analyse(study)
    ann, ben = readers
    api = api_client_for(ann)
    assert all(r["ai_suspicion"] is None for r in api.get("/api/worklist/").json()["results"])
    read = api.post(f"/api/studies/{study.pk}/claim/").json()
    assert read["ai_available"] is False and read["ai_first_shown_at"] is None
    body = api.get(f"/api/studies/{study.pk}/").json()
    assert all(i["prediction"] is None for i in body["images"])
    assert all(b["score"] is None and b["call"] is None for b in body["breasts"])
    image = study.images.first()
    assert api.get(f"/api/images/{image.pk}/heatmap/").status_code == 404
    # No AI was shown: agreeing with it is refused; a plain read goes in.
    refused = api.post(f"/api/reads/{read['id']}/submit/", assessments(ai_agreement="agree"), format="json")
    assert refused.status_code == 400
    assert api.post(f"/api/reads/{read['id']}/submit/", assessments(), format="json").status_code == 200
    body = api.get(f"/api/studies/{study.pk}/").json()
    assert all(i["prediction"] is not None for i in body["images"])  # read given: the AI is shown again


@pytest.mark.django_db
def test_it_derives_agreement_when_the_ai_was_shown(study, readers, active_model):
    ai_says(study, active_model, positive="L")
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    api = api_client_for(ann)
    missing = api.post(f"/api/reads/{read.pk}/submit/", assessments(), format="json")  # BI-RADS 1 vs positive left
    assert missing.status_code == 400 and "a reason is required" in missing.json()["detail"]
    body = {
        "density": "c",
        "assessments": [
            {"laterality": "R", "birads": 1, "recall": False, "ai_agreement": "agree"},
            {"laterality": "L", "birads": 2, "recall": False, "ai_agreement": "override", "override_reason": "Cyst"},
        ],
    }
    response = api.post(f"/api/reads/{read.pk}/submit/", body, format="json")
    assert response.status_code == 200
    assert {a["ai_agreement"] for a in response.json()["assessments"]} == {"agree", "override"}


@pytest.mark.django_db
def test_it_describes_the_reading_endpoints_in_the_schema(radiologist):
    schema = api_client_for(radiologist).get("/api/schema/?format=json").json()
    for path in [
        "/api/worklist/", "/api/studies/{id}/claim/", "/api/reads/{id}/", "/api/reads/{id}/submit/",
        "/api/reads/{id}/addenda/", "/api/studies/{id}/arbitration/", "/api/studies/{id}/outcomes/",
    ]:  # fmt: skip
        assert path in schema["paths"], path
    study_detail = schema["components"]["schemas"]["StudyDetail"]
    assert "reads" in study_detail["properties"]
