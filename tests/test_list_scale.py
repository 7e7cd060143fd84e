"""Issue 9.7: list pages and list APIs at a site's size.

- Every list page and list API runs the same number of SQL queries for 5 and for 25 studies (a real count of the
  queries run, not a timing): a query per row would show up as a difference.
- The worklist and the study list never COUNT over a DISTINCT or a GROUP BY of the whole table: the paginator's
  count is a bare COUNT over studies.
- The performance page's figures are computed once per state of the data and kept in the cache; any write that
  changes a figure (an outcome, a submitted read, an analysis, a final decision) is seen by the next view.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from cases.models import Outcome, Read, Study
from cases.performance import performance
from cases.reading import services as reading
from cases.scale_data import Mix, build_site
from inference.models import InferenceJob, ModelVersion, Prediction
from tests.conftest import make_user

LIST_URLS = (
    ("radiologist", "/reading/?queue=awaiting_first"),
    ("radiologist", "/reading/?queue=awaiting_second"),
    ("radiologist", "/reading/?queue=in_progress"),
    ("radiologist", "/reading/?queue=completed"),
    ("radiologist", "/reading/?queue=awaiting_first&sort=suspicion"),
    ("lead", "/reading/?queue=arbitration"),
    ("radiologist", "/api/worklist/?queue=awaiting_first"),
    ("radiologist", "/api/worklist/?queue=completed"),
    ("technologist", "/studies/"),
    ("technologist", "/api/studies/"),
    ("auditor", "/audit/"),
    ("lead", "/performance/"),
    ("lead", "/performance/strategies/"),
    ("lead", "/api/performance/strategies/"),
)

# Every queue of every role has a study in it from 5 studies on (readers take turns: the radiologist gives the first
# read of even-numbered studies): in progress, awaiting a second read by the radiologist, awaiting a first read,
# awaiting the lead's arbitration, final with outcomes; then final after arbitration.
MIX = Mix(
    pattern=("first_in_progress", "awaiting_second", "awaiting_first", "arbitration", "final", "arbitrated"),
    recall=0.3,
    outcome_share=1.0,
)


@pytest.fixture
def site(db, technologist, lead, auditor):
    radiologist = make_user(Role.RADIOLOGIST, "rad")
    readers = [radiologist, make_user(Role.RADIOLOGIST, "ann")]
    version = ModelVersion.objects.create(
        name="scale-model", backbone="b0", input_size=64, file="x.keras", file_sha256="0" * 64,
        preprocessing_version="test", threshold=0.3, is_active=True, status="active",
    )  # fmt: skip
    users = {"technologist": technologist, "radiologist": radiologist, "lead": lead, "auditor": auditor}

    def grow(n: int, start: int) -> None:
        build_site(
            n, technologist=technologist, readers=readers, lead=lead, model_version=version, mix=MIX, start=start
        )

    return users, grow


def _queries(client, url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured), [q["sql"] for q in captured.captured_queries]


@pytest.mark.django_db
def test_every_list_page_runs_the_same_queries_for_5_and_25_studies(client, site):
    users, grow = site
    grow(5, 0)
    few = {}
    for role, url in LIST_URLS:
        client.force_login(users[role])
        client.get(url)  # warm up: the session, content types, and the performance figures' cache
        few[(role, url)] = _queries(client, url)[0]
    grow(20, 5)
    assert Study.objects.count() == 25
    many = {}
    for role, url in LIST_URLS:
        client.force_login(users[role])
        client.get(url)
        many[(role, url)] = _queries(client, url)[0]
    assert few == many, {k: (few[k], many[k]) for k in few if few[k] != many[k]}


@pytest.mark.django_db
def test_the_worklist_and_study_list_count_without_distinct_or_group_by(client, site):
    users, grow = site
    grow(25, 0)
    for role, url in (("radiologist", "/reading/?queue=completed"), ("technologist", "/studies/")):
        client.force_login(users[role])
        _, sql = _queries(client, url)
        assert any(q.startswith('SELECT COUNT(*) AS "__count" FROM "cases_study"') for q in sql), sql
        for q in sql:
            assert "SELECT DISTINCT" not in q and 'GROUP BY "cases_study"' not in q and "GROUP BY 1" not in q, q


@pytest.mark.django_db
def test_the_study_list_still_counts_images_and_pages_in_order(client, site):
    users, grow = site
    grow(30, 0)
    client.force_login(users["technologist"])
    response = client.get("/studies/")
    page = response.context["page"]
    assert page.paginator.count == 30 and len(page.object_list) == 25
    assert all(study.image_count == 4 for study in page.object_list)
    second = client.get("/studies/?page=2").context["page"].object_list
    assert {s.pk for s in page.object_list}.isdisjoint({s.pk for s in second}) and len(second) == 5


@pytest.mark.django_db
def test_the_worklist_counts_match_its_queues(client, site):
    users, grow = site
    grow(25, 0)
    radiologist = users["radiologist"]
    client.force_login(radiologist)
    response = client.get("/reading/?queue=completed")
    tabs = {tab["queue"]: tab["count"] for tab in response.context["tabs"]}
    submitted = Read.objects.filter(reader=radiologist, status=Read.Status.SUBMITTED).values("study").distinct()
    assert tabs["completed"] == submitted.count() == response.context["page"].paginator.count > 0
    for queue, count in tabs.items():
        assert client.get(f"/reading/?queue={queue}").context["page"].paginator.count == count, queue


# ---- the performance page's cache ---------------------------------------------------------------------------------


NORMAL = [reading.AssessmentInput(side, 1) for side in "RL"]  # recall and agreement follow (cases.reading.rules)


def _record_outcomes(study, lead) -> None:
    for side in "RL":
        reading.outcome_record(study_id=study.pk, laterality=side, truth="normal", user=lead)


def _figures(lead):
    report = performance.performance_report(user=lead, n_bootstrap=200, minimum=1)
    readers = [(r.label, r.studies) for r in report.readers]
    return report.studies_with_outcomes, report.ai.breasts, report.ai.auc, report.programme.studies, readers


@pytest.mark.django_db
def test_the_performance_figures_are_computed_once_per_state_of_the_data(client, site):
    users, grow = site
    lead = users["lead"]
    grow(25, 0)
    client.force_login(lead)
    first, _ = _queries(client, "/performance/")
    again, sql = _queries(client, "/performance/")
    assert again < first  # the figures came from the cache
    assert not any('"inference_prediction"."probability"' in q for q in sql)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    ["outcome", "outcome_corrected", "read_submitted", "new_analysis", "final_decision", "reader_renamed"],
)
def test_every_write_that_changes_a_figure_is_seen_by_the_next_view(site, technologist, change):
    users, grow = site
    lead, radiologist = users["lead"], users["radiologist"]
    grow(25, 0)
    before = _figures(lead)
    assert _figures(lead) == before
    if change == "outcome":
        study = Study.objects.filter(status=Study.Status.FINAL, outcomes__isnull=False).first()
        Outcome.objects.filter(study=study).delete()
        before = _figures(lead)
        reading.outcome_record(study_id=study.pk, laterality="R", truth="malignant", user=lead)
    elif change == "outcome_corrected":
        outcome = Outcome.objects.filter(truth=Outcome.Truth.NORMAL).first()
        reading.outcome_record(study_id=outcome.study_id, laterality=outcome.laterality, truth="malignant", user=lead)
    elif change == "read_submitted":
        # A study with outcomes whose first read (the radiologist's) is in progress, then submitted.
        read = Read.objects.filter(reader=radiologist, status=Read.Status.IN_PROGRESS).first()
        _record_outcomes(read.study, lead)
        before = _figures(lead)
        reading.read_submit(density="b", read_id=read.pk, user=radiologist, assessments=NORMAL)
    elif change == "new_analysis":
        from inference.models import InferenceJob

        # A newer analysis of a study's images (by another model), no result yet: its breasts have no current result.
        study = Prediction.objects.filter(image__study__outcomes__isnull=False).first().image.study
        other = ModelVersion.objects.create(
            name="newer", backbone="b0", input_size=64, file="y.keras", file_sha256="1" * 64,
            preprocessing_version="test",
        )  # fmt: skip
        for image in study.images.all():
            InferenceJob.objects.create(image=image, model_version=other, status=InferenceJob.Status.QUEUED)
    elif change == "final_decision":
        # A study with outcomes awaiting arbitration, then arbitrated: the programme's decision is in.
        study = Study.objects.filter(status=Study.Status.ARBITRATION).first()
        _record_outcomes(study, lead)
        before = _figures(lead)
        reading.arbitration_submit(density="b", study_id=study.pk, user=lead, assessments=NORMAL)
    elif change == "reader_renamed":
        radiologist.first_name, radiologist.last_name = "Rosalind", "Reader"
        radiologist.save()
    after = _figures(lead)
    assert after != before, change
    fresh = performance._report(n_bootstrap=200, minimum=1)  # computed now, no cache
    assert after[:4] == (fresh.studies_with_outcomes, fresh.ai.breasts, fresh.ai.auc, fresh.programme.studies)


def test_the_stored_ai_suspicion_follows_the_predictions_and_orders_the_worklist(site):
    """The worklist sorts by Study.ai_suspicion from an index; it must always be the highest probability of the
    study's predictions: after bulk building, after a new analysis and after a prediction is removed."""
    from django.db.models import Max

    users, grow = site
    grow(12, 0)

    def expected() -> dict[int, float | None]:
        return {s.pk: s.top for s in Study.objects.annotate(top=Max("images__predictions__probability"))}

    assert dict(Study.objects.values_list("pk", "ai_suspicion")) == expected()
    prediction = Prediction.objects.order_by("probability").first()
    study = prediction.image.study
    second = ModelVersion.objects.create(
        name="second", backbone="b0", input_size=64, file="y.keras", file_sha256="1" * 64,
        preprocessing_version="test", threshold=0.3,
    )  # fmt: skip
    job = InferenceJob.objects.create(image=prediction.image, model_version=second, status="succeeded")
    Prediction.objects.create(
        job=job, image=prediction.image, model_version=second, probability=0.999, raw_probability=0.999,
        threshold=0.3, label="malignant", heatmap="", overlay="", input_sha256="0" * 64,
    )  # fmt: skip
    study.refresh_from_db()
    assert study.ai_suspicion == 0.999
    Prediction.objects.filter(probability=0.999).delete()
    assert dict(Study.objects.values_list("pk", "ai_suspicion")) == expected()
