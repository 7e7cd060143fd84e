"""The strategies report on the real database: the selector's records, the stored report computed in a real Celery
worker when an outcome is recorded, the lead's button, the page, exports, API, and who may see them.

The set (studies, reads, arbitration and outcomes through the services; predictions written directly):

study woman date        first  second  arbitration  final        outcome R / L        AI R / L (current model)
D1    A     2023-01-10  R      R       -            recall       malignant / normal   .90 (CC; MLO .30) / .10
D2    B     2023-01-11  -      L       L            recall       normal / benign      .20 / .60
D3    A     2023-07-01  -      -       -            no recall    normal / normal      .30 / .30
D4    C     2023-07-02  -      -       -            no recall    malignant / normal   .95 / .10
D5    D     2023-07-03  -      (none)  -            no recall*   normal / normal      not scored
D6    E     2023-07-04  R      R       -            no recall**  normal / normal      .10 / .10   (left out)
D7    F     2023-07-05  -      (none)  -            (awaiting)   normal / normal      -           (left out)
*  recorded final with one read (a legacy record). ** final decision changed directly: not explained by its reads.
An older model scored D1's right breast .05: not used.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from audit.models import AuditEvent
from cases.models import StrategyReport, Study
from cases.performance.strategy_report import StrategyParameters
from cases.performance.strategy_selectors import AWAITING_DECISION, FINAL_NOT_FROM_READS, strategy_screens
from cases.performance.strategy_services import strategy_report_compute, strategy_report_request
from cases.performance.strategy_statistics import Minimums
from cases.reading import claims
from cases.reading import services as reading
from cases.studies.ingestion import IncomingFile, study_upload
from tests.conftest import api_client_for, make_user, wait_for
from tests.dicom_factory import make_dicom
from tests.test_performance import assessments, model_version, predict

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the browser test: Playwright's sync API runs a loop

SMALL = StrategyParameters(minimums=Minimums(cancers=1, non_cancers=1, screens=1, recalls=1), n_bootstrap=200)
PAGE_URLS = ["/performance/strategies/"]
API_URL = "/api/performance/strategies/"


def upload(user, tag: str, woman: str, day: date, views=(("R", "CC"), ("L", "CC"))) -> Study:
    files = [
        IncomingFile.from_bytes(
            f"{side}_{view}.dcm",
            make_dicom(sop_uid=f"2.9.{tag}.{i}", laterality=side, view=view, patient_id=f"woman-{woman}"),
        )
        for i, (side, view) in enumerate(views)
    ]
    study = study_upload(user=user, files=files, study_date=day).study
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    return study


def read(study, user, recalled: str) -> None:
    claimed = claims.read_claim(study_id=study.pk, user=user)
    reading.read_submit(density="b", read_id=claimed.pk, user=user, assessments=assessments(recalled))


def score(study, version, right: float, left: float, *, mlo: float | None = None) -> None:
    for image in study.images.all():
        predict(image, version, mlo if image.view == "MLO" else (right if image.laterality == "R" else left))


def build_site(technologist, lead, *, record_outcomes: bool = True) -> dict[str, Study]:
    ann, ben = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")
    s = {
        "D1": upload(technologist, "1", "A", date(2023, 1, 10), views=(("R", "CC"), ("R", "MLO"), ("L", "CC"))),
        "D2": upload(technologist, "2", "B", date(2023, 1, 11)),
        "D3": upload(technologist, "3", "A", date(2023, 7, 1)),
        "D4": upload(technologist, "4", "C", date(2023, 7, 2)),
        "D5": upload(technologist, "5", "D", date(2023, 7, 3)),
        "D6": upload(technologist, "6", "E", date(2023, 7, 4)),
        "D7": upload(technologist, "7", "F", date(2023, 7, 5)),
    }
    for name, first, second in (("D1", "R", "R"), ("D2", "", "L"), ("D3", "", ""), ("D4", "", ""), ("D6", "R", "R")):
        read(s[name], ann, first)
        read(s[name], ben, second)
    reading.arbitration_submit(density="b", study_id=s["D2"].pk, user=lead, assessments=assessments("L"))
    read(s["D5"], ann, "")
    Study.objects.filter(pk=s["D5"].pk).update(status=Study.Status.FINAL, final_recall=False)  # a legacy record
    Study.objects.filter(pk=s["D6"].pk).update(final_recall=False)  # not what its reads decided
    read(s["D7"], ann, "")
    old, current = model_version("old-model"), model_version("current-model")
    current.is_active, current.status = True, "active"
    current.save(update_fields=["is_active", "status"])
    predict(s["D1"].images.get(laterality="R", view="CC"), old, 0.05)
    score(s["D1"], current, 0.90, 0.10, mlo=0.30)
    for name, right, left in (("D2", 0.2, 0.6), ("D3", 0.3, 0.3), ("D4", 0.95, 0.1), ("D6", 0.1, 0.1)):
        score(s[name], current, right, left)
    if record_outcomes:
        record_outcomes_of(s, lead)
    return s


OUTCOMES = {"D1": ("malignant", "normal"), "D2": ("normal", "benign"), "D4": ("malignant", "normal")}


def record_outcomes_of(studies: dict[str, Study], lead) -> None:
    for name, study in studies.items():
        for side, truth in zip("RL", OUTCOMES.get(name, ("normal", "normal")), strict=True):
            reading.outcome_record(study_id=study.pk, laterality=side, truth=truth, user=lead)


@pytest.fixture
def site(db, technologist, lead):
    return build_site(technologist, lead)


def computed_report(lead, parameters=SMALL) -> StrategyReport:
    report = strategy_report_request(user=lead, trigger=StrategyReport.Trigger.REQUEST, parameters=parameters)
    return strategy_report_compute(report_id=report.pk)


# ---- the selector -------------------------------------------------------------------------------------------------


def test_it_turns_the_database_into_screen_records(site):
    from inference.models import ModelVersion

    selection = strategy_screens(model_version=ModelVersion.objects.get(name="current-model"))
    assert selection.excluded == {FINAL_NOT_FROM_READS: 1, AWAITING_DECISION: 1}  # D6, D7
    screens = {s.study_id: s for s in selection.screens}
    assert set(screens) == {site[n].pk for n in ("D1", "D2", "D3", "D4", "D5")}
    d1, d2, d3, d5 = (screens[site[n].pk] for n in ("D1", "D2", "D3", "D5"))
    assert d1.woman_id == d3.woman_id != d2.woman_id  # woman A screened twice
    assert (d1.screen_date, d3.screen_date) == (date(2023, 1, 10), date(2023, 7, 1))
    right, left = d1.breasts
    assert (right.laterality, right.first_recall, right.second_recall, right.arbitration_recall) == (
        "R",
        True,
        True,
        None,
    )
    assert (right.final_recall, right.ai_score, right.truth) == (True, 0.90, "malignant")  # max over views, this model
    assert (left.final_recall, left.ai_score, left.truth) == (False, 0.10, "normal")
    assert [(b.first_recall, b.second_recall, b.arbitration_recall, b.final_recall) for b in d2.breasts] == [
        (False, False, False, False),
        (False, True, True, True),
    ]
    assert [(b.second_recall, b.ai_score) for b in d5.breasts] == [(None, None), (None, None)]
    assert d5.model_version is None and d1.model_version == "current-model"


def test_it_reads_the_records_in_a_constant_number_of_queries(site, technologist, lead):
    from inference.models import ModelVersion

    version = ModelVersion.objects.get(name="current-model")
    with CaptureQueriesContext(connection) as before:
        assert len(strategy_screens(model_version=version).screens) == 5
    # No analysis jobs for the new uploads.
    ModelVersion.objects.filter(pk=version.pk).update(is_active=False, status="accepted")
    ann, ben = make_user(Role.RADIOLOGIST, "cy"), make_user(Role.RADIOLOGIST, "di")
    for n in range(3):
        study = upload(technologist, f"9{n}", f"X{n}", date(2023, 8, n + 1))
        read(study, ann, "")
        read(study, ben, "")
        score(study, version, 0.1, 0.1)
        reading.outcome_record(study_id=study.pk, laterality="R", truth="normal", user=lead)
    with CaptureQueriesContext(connection) as after:
        assert len(strategy_screens(model_version=version).screens) == 8
    assert len(before.captured_queries) == len(after.captured_queries) == 6


# ---- computing and storing ----------------------------------------------------------------------------------------


def test_it_computes_and_stores_the_figures_of_the_site(site, lead):
    report = computed_report(lead)
    assert report.status == StrategyReport.Status.SUCCEEDED and report.duration_ms is not None
    figures = report.figures
    assert figures["population"]["screens"] == 5 and figures["population"]["women"] == 4
    assert figures["model"] == {"name": "current-model", "threshold": 0.5, "validated": False}
    rows = {row["key"]: row for row in figures["all_screens"]["strategies"]}
    baseline = rows["double_reading"]["figures"]
    assert (baseline["sensitivity"]["estimate"], baseline["recall_rate"]["estimate"]) == (1 / 2, 2 / 5)
    assert baseline["screen_reads_per_1000"]["estimate"] == 1000 * 9 / 5  # D5 was read once
    ai = rows["ai_second_reader"]
    # D2: the AI's left .60 against the first reader, settled by the recorded arbitration; D4: the AI flags the
    # missed cancer, no arbitration: unresolved, counted as recalled. D5 not scored: double reading.
    assert ai["figures"]["sensitivity"]["estimate"] == 2 / 2
    assert (ai["counts"]["unresolved"], ai["counts"]["unresolved_cancers"], ai["counts"]["ai_fallback"]) == (1, 1, 1)
    assert ai["figures"]["arbitration_reads_per_1000"]["estimate"] == 1000 * 2 / 5
    # Median date 2023-07-01: D1 and D2 choose, D3-D5 report. Triage on the earlier period: at .90 only D2 (benign)
    # is single read and no cancer is lost.
    assert figures["split"]["date"] == "2023-07-01"
    assert figures["cutoffs"]["ai_triage"]["cutoff"] == 0.90
    later = {row["key"]: row for row in figures["later_period"]["strategies"]}
    assert later["ai_triage"]["counts"]["single_read"] == 1  # D3 (.30); D4 (.95) double read; D5 not scored
    assert figures["cutoffs"]["ai_safety_net"]["cutoff"] is None  # nothing cleared in the earlier period
    assert figures["excluded_studies"] == {FINAL_NOT_FROM_READS: 1, AWAITING_DECISION: 1}
    assert (
        bytes(report.triage_png)[:8] == b"\x89PNG\r\n\x1a\n"
        and bytes(report.safety_net_png)[:8] == b"\x89PNG\r\n\x1a\n"
    )
    assert strategy_report_compute(report_id=report.pk).finished_at == report.finished_at  # a second run: no-op


def test_it_queues_one_computation_for_outcomes_recorded_together(
    db, technologist, lead, django_capture_on_commit_callbacks
):
    studies = build_site(technologist, lead, record_outcomes=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record_outcomes_of(studies, lead)
    assert StrategyReport.objects.count() == 1  # fourteen outcomes, one queued computation
    report = StrategyReport.objects.get()
    assert (report.status, report.trigger, report.model_version.name) == ("queued", "outcome", "current-model")
    assert len(callbacks) == 1
    before = StrategyReport.objects.count()
    reading.outcome_record(study_id=studies["D1"].pk, laterality="R", truth="malignant", user=lead)  # unchanged
    assert StrategyReport.objects.count() == before


# ---- the real worker ----------------------------------------------------------------------------------------------


@pytest.mark.worker
def test_it_recomputes_in_the_worker_when_an_outcome_is_recorded(celery_worker, technologist, lead):
    studies = build_site(technologist, lead, record_outcomes=False)
    record_outcomes_of(studies, lead)

    def settled():
        open_reports = StrategyReport.objects.filter(status__in=("queued", "running")).exists()
        newest = StrategyReport.objects.first()
        return not open_reports and newest is not None and newest.status == "succeeded" and newest

    report = wait_for(settled, timeout=120, worker=celery_worker)
    assert report.trigger == StrategyReport.Trigger.OUTCOME
    assert report.figures["population"]["screens"] == 5 and report.figures["population"]["cancer_screens"] == 2
    assert report.started_at >= max(o.recorded_at for s in studies.values() for o in s.outcomes.all())


# ---- the page, the button, exports and the API --------------------------------------------------------------------


def test_it_shows_the_stored_report_to_leads_and_auditors(client, site, lead, auditor):
    report = computed_report(lead)
    client.force_login(auditor)
    page = client.get("/performance/strategies/").content.decode()
    assert "AI as second reader" in page and "AI triage" in page and "current-model" in page
    assert "Not validated" in page and f"Report {report.pk}" in page
    assert "Compute the strategies report" not in page  # auditors read only
    assert "style=" not in page  # a strict Content-Security-Policy allows no inline styles
    for plot in ("triage", "safety-net"):
        response = client.get(f"/performance/strategies/{report.pk}/{plot}.png")
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
    client.force_login(lead)
    assert "Compute the strategies report" in client.get("/performance/strategies/").content.decode()


def test_it_says_not_enough_data_below_the_minimums(client, site, lead):
    computed_report(lead, parameters=StrategyParameters(n_bootstrap=50))  # default minimums: 10 cancers...
    client.force_login(lead)
    page = client.get("/performance/strategies/").content.decode()
    assert "not enough data" in page
    assert "no cut-off: not enough data in the earlier period to choose a cut-off" in page


def test_it_exports_the_figures_as_csv_and_json(client, site, lead, auditor):
    report = computed_report(lead)
    client.force_login(auditor)
    response = client.get(f"/performance/strategies/{report.pk}/strategies.csv")
    assert response["Content-Disposition"] == f'attachment; filename="strategies-{report.pk}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    sensitivity = next(
        r for r in rows if (r["table"], r["strategy"], r["metric"]) == ("all_screens", "double_reading", "sensitivity")
    )
    assert (float(sensitivity["estimate"]), sensitivity["numerator"], sensitivity["denominator"]) == (0.5, "1", "2")
    assert (sensitivity["model_version"], sensitivity["model_validated"]) == ("current-model", "False")
    triage = next(r for r in rows if r["strategy"] == "ai_triage")
    assert (triage["table"], float(triage["cutoff"])) == ("later_period", 0.9)
    document = json.loads(client.get(f"/performance/strategies/{report.pk}/strategies.json").content)
    assert document["id"] == report.pk and document["figures"] == report.figures
    assert document["model_version"]["validation"]["validated"] is False


def test_it_serves_the_same_figures_through_the_api(site, lead, auditor):
    report = computed_report(lead)
    answer = api_client_for(auditor).get(API_URL).json()
    assert answer["report"]["id"] == report.pk and answer["report"]["figures"] == report.figures
    assert answer["pending"] is None and answer["failed"] is None
    assert api_client_for(auditor).get(f"{API_URL}{report.pk}/").json()["computed_at"] is not None


def test_it_lets_a_lead_ask_for_a_computation(client, site, lead, django_capture_on_commit_callbacks):
    client.force_login(lead)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/performance/strategies/compute", {"split_date": "2023-07-02", "extra_recall_budget_per_1000": "20"}
        )
    assert response.status_code == 302
    report = StrategyReport.objects.filter(trigger="request").get()
    assert report.parameters["split_date"] == "2023-07-02" and report.parameters["extra_recall_budget_per_1000"] == 20
    assert len(callbacks) == 1
    assert AuditEvent.objects.filter(action="strategies.requested", object_id=str(report.pk)).exists()
    assert "A new computation is queued" in client.get("/performance/strategies/").content.decode()
    answer = api_client_for(lead).post(API_URL, {"extra_recall_budget_per_1000": 2000}, format="json")
    assert answer.status_code == 400  # a budget per 1,000 screens above 1,000
    answer = api_client_for(lead).post(API_URL, {"model_version": "old-model"}, format="json")
    assert answer.status_code == 202 and answer.json()["status"] == "queued"


# ---- who may -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["technologist", "radiologist", "admin_user"])
def test_it_refuses_the_strategies_to_other_roles(client, role_fixture, request, lead):
    report = computed_report(lead)
    user = request.getfixturevalue(role_fixture)
    client.force_login(user)
    urls = [
        *PAGE_URLS,
        *(
            f"/performance/strategies/{report.pk}/{name}"
            for name in ("strategies.csv", "strategies.json", "triage.png")
        ),
    ]
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert client.post("/performance/strategies/compute").status_code == 403
    api = api_client_for(user)
    assert api.get(API_URL).status_code == 403
    assert api.get(f"{API_URL}{report.pk}/").status_code == 403
    assert api.post(API_URL, {}, format="json").status_code == 403


def test_it_refuses_the_compute_button_to_auditors(client, auditor, db):
    client.force_login(auditor)
    assert client.post("/performance/strategies/compute").status_code == 403
    assert api_client_for(auditor).post(API_URL, {}, format="json").status_code == 403
    assert not StrategyReport.objects.exists()


@pytest.mark.django_db
def test_it_sends_signed_out_users_to_the_login_page(client):
    response = client.get("/performance/strategies/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert api_client_for_anonymous().get(API_URL).status_code == 401


def api_client_for_anonymous():
    from rest_framework.test import APIClient

    return APIClient()


def test_it_draws_no_chart_where_there_is_not_enough_data_and_answers_first(client, site, lead):
    report = computed_report(lead, parameters=StrategyParameters(n_bootstrap=50))  # default minimums: 10 cancers...
    client.force_login(lead)
    page = client.get("/performance/strategies/").content.decode()
    assert "strat-plot" not in page and 'id="strategies-no-plots"' in page
    # The answer first: the summary table of every strategy, then the details, folded.
    summary = page.index('id="strategies-summary"')
    assert all(summary < page.index(f'<details class="card{extra}" id="strategies-{key}"') for key, extra in (
        ("meta", " strat-meta"), ("cutoffs", ""), ("later_period", ""), ("all_screens", ""), ("plots", ""),
        ("definitions", ""))), "the summary comes first, the rest in <details>"  # fmt: skip
    assert " open" not in page.split('id="strategies-summary"')[1].split("</details>")[0].split(">")[0]
    for row in report.figures["later_period"]["strategies"]:
        assert f'id="summary-{row["key"]}"' in page

    computed_report(lead)  # minimums of 1: the curves are worth drawing
    page = client.get("/performance/strategies/").content.decode()
    assert page.count('class="strat-plot"') >= 1 and 'id="strategies-no-plots"' not in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_is_short_with_the_details_folded(live_server, browser, technologist, lead):
    from tests.browser import check_accessibility, screenshot
    from tests.conftest import PASSWORD

    build_site(technologist, lead)
    computed_report(lead, parameters=StrategyParameters(n_bootstrap=50))
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", lead.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.goto(f"{live_server.url}/performance/strategies/")
    height = page.evaluate("document.documentElement.scrollHeight")
    summary = page.locator("#strategies-summary").bounding_box()
    screenshot(page, "strategies-folded")
    check_accessibility(page, "strategies-folded")
    assert summary["y"] < 1000, "the answer is on the first screen"
    assert height < 2200, f"the page is {height} px long"
    assert page.locator("img.strat-plot").count() == 0
    page.click("#strategies-later_period > summary")
    assert page.locator("#strategies-later_period table").first.is_visible()
    context.close()
