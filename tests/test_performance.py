"""Screening performance: who may see it, and figures on a small hand-built set that match hand-computed values.

The set (studies, reads and outcomes through the services; predictions written directly for exact probabilities):
10 studies with outcomes, 4 with cancer (right breast malignant) and 6 without, plus one study with no outcome.

study  truth (R/L)        Ann    Ben    programme                 AI breast scores R / L
0      malignant/normal   R      R      recall                    0.90 / 0.70
1      malignant/normal   R      R      recall                    0.80 / 0.55
2      malignant/normal   R      -      arbitration: recall       0.60 / 0.45
3      malignant/normal   -      -      no recall                 0.30 / 0.40
4      benign/normal      L      L      recall                    0.35 / 0.25
5      normal/normal      -      L      arbitration: recall       0.20 / 0.15
6-9    normal/normal      -      -      no recall                 0.10, 0.10, 0.05, 0.05, 0.05, 0.02, 0.02, 0.01
10     (no outcome)       R+L    R+L    recall                    0.95 / 0.95  (left out everywhere)

Per study:  Ann sensitivity 3/4, specificity 5/6, recall rate 4/10; Ben 2/4, 4/6, 4/10;
            programme 3/4, 4/6, 5/10 (and 6/11 over every finalised study).
Per breast: 4 malignant, 16 not; at threshold 0.5 TP 3, FN 1, FP 2, TN 14; AUC = (16 + 16 + 15 + 11) / 64.
"""

from __future__ import annotations

import uuid

import pytest

from accounts.roles import Role
from cases.models import Study
from cases.performance import performance
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.services import AssessmentInput
from cases.scale_data import Mix, build_site
from cases.studies.ingestion import IncomingFile, study_upload
from inference.metrics import wilson_ci
from inference.models import InferenceJob, ModelVersion, Prediction
from tests.conftest import make_user
from tests.dicom_factory import make_dicom

PERFORMANCE_URLS = ["/performance/", "/performance/roc.png"]

CANCER = ("malignant", "normal")
TRUTH = [CANCER] * 4 + [("benign", "normal")] + [("normal", "normal")] * 5
ANN = {0: "R", 1: "R", 2: "R", 4: "L", 10: "RL"}
BEN = {0: "R", 1: "R", 4: "L", 5: "L", 10: "RL"}
ARBITRATION = {2: "R", 5: "L"}
SCORES = [
    (0.90, 0.70), (0.80, 0.55), (0.60, 0.45), (0.30, 0.40), (0.35, 0.25),
    (0.20, 0.15), (0.10, 0.10), (0.05, 0.05), (0.05, 0.02), (0.02, 0.01),
    (0.95, 0.95),
]  # fmt: skip


def make_study(user, tag: str) -> Study:
    """Four views: right and left, CC and MLO."""
    files = [
        IncomingFile.from_bytes(
            f"{side}_{view}.dcm",
            make_dicom(sop_uid=f"2.7.{tag}.{i}", laterality=side, view=view, patient_id=f"W{tag}"),
        )
        for i, (side, view) in enumerate([("R", "CC"), ("R", "MLO"), ("L", "CC"), ("L", "MLO")])
    ]
    study = study_upload(user=user, files=files).study
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    return study


def assessments(recalled: str) -> list[AssessmentInput]:
    return [AssessmentInput(laterality=s, birads=4 if s in recalled else 1, recall=s in recalled) for s in "RL"]


def double_read(study: Study, first, second, *, first_recalls: str = "", second_recalls: str = "") -> None:
    for user, recalled in ((first, first_recalls), (second, second_recalls)):
        read = claims.read_claim(study_id=study.pk, user=user)
        reading.read_submit(density="b", read_id=read.pk, user=user, assessments=assessments(recalled))


def model_version(name: str, threshold: float = 0.5) -> ModelVersion:
    return ModelVersion.objects.create(
        name=name, backbone="b0", input_size=64, file="x.keras", file_sha256="0" * 64, preprocessing_version="test",
        threshold=threshold,
    )  # fmt: skip


def predict(image, version: ModelVersion, probability: float) -> Prediction:
    job = InferenceJob.objects.create(image=image, model_version=version, status=InferenceJob.Status.SUCCEEDED)
    return Prediction.objects.create(
        job=job, image=image, model_version=version, probability=probability, raw_probability=probability,
        threshold=version.threshold, label="malignant" if probability >= version.threshold else "benign",
        heatmap="", overlay="", input_sha256=uuid.uuid4().hex,
    )  # fmt: skip


def predict_breasts(study: Study, version: ModelVersion, right: float, left: float) -> None:
    """The breast's score on one view and half of it on the other (alternating), so only max-over-views gives it."""
    for image in study.images.all():
        score = right if image.laterality == "R" else left
        top_view = "CC" if study.pk % 2 else "MLO"
        predict(image, version, score if image.view == top_view else score / 2)


@pytest.fixture
def screening_set(db, technologist, lead):
    ann, ben = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")
    studies = [make_study(technologist, str(n)) for n in range(11)]
    for n, study in enumerate(studies):
        double_read(study, ann, ben, first_recalls=ANN.get(n, ""), second_recalls=BEN.get(n, ""))
        if n in ARBITRATION:
            reading.arbitration_submit(
                density="b", study_id=study.pk, user=lead, assessments=assessments(ARBITRATION[n])
            )
        if n < len(TRUTH):
            for side, truth in zip("RL", TRUTH[n], strict=True):
                reading.outcome_record(study_id=study.pk, laterality=side, truth=truth, user=lead)
    # An older model's prediction that a later analysis replaced: it must not count.
    old = model_version("old-model")
    stale_image = studies[9].images.get(laterality="L", view="CC")
    predict(stale_image, old, 0.99)
    current = model_version("current-model")
    for study, (right, left) in zip(studies, SCORES, strict=True):
        predict_breasts(study, current, right, left)
    return studies


# ---- access -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_sends_signed_out_users_to_the_login_page(client):
    for url in PERFORMANCE_URLS:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["technologist", "radiologist", "admin_user"])
def test_it_refuses_performance_to_other_roles(client, role_fixture, request):
    user = request.getfixturevalue(role_fixture)
    client.force_login(user)
    for url in PERFORMANCE_URLS:
        assert client.get(url).status_code == 403, url
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        performance.performance_report(user=user)
    with pytest.raises(PermissionDenied):
        performance.ai_roc_curve(user=user)


# ---- figures ------------------------------------------------------------------------------------------------------


def test_wilson_interval_matches_a_known_value_and_contains_the_estimate():
    p = performance.proportion(3, 4)
    assert p.estimate == 0.75
    assert p.low == pytest.approx(0.3006, abs=1e-4) and p.high == pytest.approx(0.9544, abs=1e-4)
    assert p.low < p.estimate < p.high
    assert performance.proportion(0, 10).low == 0.0 and performance.proportion(10, 10).high == 1.0
    empty = performance.proportion(0, 0)
    assert not empty.enough and empty.estimate is None and empty.low is None


def _check(p: performance.Proportion, successes: int, total: int) -> None:
    assert (p.successes, p.total) == (successes, total)
    assert p.estimate == pytest.approx(successes / total)
    assert (p.low, p.high) == pytest.approx(wilson_ci(successes, total))
    assert p.low <= p.estimate <= p.high


@pytest.mark.django_db
def test_the_figures_match_hand_computed_values(screening_set, lead):
    # minimum=1: the figures are checked by hand on 10 studies, below the page's MIN_CASES.
    report = performance.performance_report(user=lead, n_bootstrap=500, minimum=1)
    assert (report.studies_with_outcomes, report.cancer_studies, report.non_cancer_studies) == (10, 4, 6)

    readers = {r.label: r for r in report.readers}
    assert set(readers) == {"ann", "ben"}  # the lead's arbitrations are the programme's, not a reader's
    ann, ben = readers["ann"], readers["ben"]
    assert (ann.studies, ann.cancers, ann.non_cancers) == (10, 4, 6)
    _check(ann.sensitivity, 3, 4)
    _check(ann.specificity, 5, 6)
    _check(ann.recall_rate, 4, 10)
    _check(ben.sensitivity, 2, 4)
    _check(ben.specificity, 4, 6)
    _check(ben.recall_rate, 4, 10)

    programme = report.programme
    assert programme.studies == 10 and report.studies_awaiting_decision == 0
    _check(programme.sensitivity, 3, 4)
    _check(programme.specificity, 4, 6)
    _check(programme.recall_rate, 5, 10)
    _check(report.programme_recall_all_final, 6, 11)

    ai = report.ai
    assert (ai.breasts, ai.cancers, ai.non_cancers, ai.breasts_without_ai) == (20, 4, 16, 0)
    assert ai.thresholds == (0.5,) and ai.model_versions == ("current-model",)
    _check(ai.sensitivity, 3, 4)
    _check(ai.specificity, 14, 16)
    assert ai.auc == pytest.approx(58 / 64)
    assert ai.auc_low <= ai.auc <= ai.auc_high <= 1.0
    again = performance.performance_report(user=lead, n_bootstrap=500, minimum=1).ai
    assert (again.auc_low, again.auc_high) == (ai.auc_low, ai.auc_high)  # seeded: the page re-renders the same

    assert (report.benchmark.sensitivity, report.benchmark.specificity, report.benchmark.recall_rate) == (
        0.869,
        0.889,
        0.116,
    )


@pytest.mark.django_db
def test_the_roc_curve_and_its_operating_point(screening_set, auditor):
    curve = performance.ai_roc_curve(user=auditor, minimum=1)
    assert (curve.positives, curve.negatives) == (4, 16)
    assert curve.auc == pytest.approx(58 / 64)
    assert curve.operating_point == pytest.approx((2 / 16, 3 / 4))
    assert curve.false_positive_rate[0] == 0 and curve.true_positive_rate[-1] == 1


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["lead", "auditor"])
def test_the_page_shows_the_figures_the_cases_and_the_benchmarks(client, role_fixture, request, technologist, lead):
    """A site with enough cases (MIN_CASES malignant and non-malignant breasts and more): figures, intervals and
    counts; the thresholds rounded for people (a stored 1/3 is not printed with 17 digits)."""
    version = model_version("site-model", threshold=1 / 3)
    ann, ben = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")
    build_site(
        120, technologist=technologist, readers=[ann, ben], lead=lead, model_version=version,
        mix=Mix(recall=0.3, malignant_among_recalled=1.0), audit_events_per_study=0,
    )  # fmt: skip
    client.force_login(request.getfixturevalue(role_fixture))
    response = client.get("/performance/")
    page = response.content.decode()
    ai = response.context["report"].ai
    assert ai.cancers >= performance.MIN_CASES and ai.non_cancers >= performance.MIN_CASES and ai.auc is not None
    assert f"{ai.cancers} malignant and {ai.non_cancers} non-malignant breasts" in page
    assert f"{ai.auc:.3f}" in page and f"{ai.auc_low:.3f}–{ai.auc_high:.3f}" in page
    assert f"{ai.sensitivity.successes} of {ai.cancers} malignant breasts" in page
    assert "(0.333)" in page and "0.33333" not in page
    assert "86.9 %" in page and "88.9 %" in page and "11.6 %" in page and "Lehman" in page
    assert "not enough data" not in page.split('id="ai-sensitivity"')[1].split("</table>")[0]
    assert 'src="/performance/roc.png"' in page and "/images/" not in page
    image = client.get("/performance/roc.png")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n") and len(image.content) > 5000


@pytest.mark.django_db
def test_below_the_minimum_of_cases_the_page_gives_counts_not_figures(client, screening_set, auditor):
    """The hand-built set has 4 cancers and 4 malignant breasts, under MIN_CASES: its sensitivities, the AUC and the
    ROC curve are withheld ("not enough data"), their counts shown; 16 non-malignant breasts give a specificity."""
    client.force_login(auditor)
    page = client.get("/performance/").content.decode()
    assert "10 studies with a recorded outcome" in page
    ai_rows = page.split('id="ai-sensitivity"')[1].split("</table>")[0]
    sensitivity, specificity, auc = ai_rows.split("<tr")[:3]
    assert "not enough data" in sensitivity and "3 of 4 malignant breasts" in sensitivity
    assert "75.0 %" not in sensitivity
    assert "87.5 %" in specificity and "14 of 16 non-malignant breasts" in specificity
    assert "not enough data" in auc and "0.906" not in page and "4 malignant and 16 non-malignant breasts" in auc
    assert "3 of 4 cancers" in page and "5 of 6 non-cancers" in page and "4 of 10 studies" in page
    assert "40.0 %" in page  # a recall rate over 10 studies is shown
    assert "roc.png" not in page and client.get("/performance/roc.png").status_code == 404


@pytest.mark.django_db
def test_one_malignant_and_one_normal_breast_give_no_auc(client, technologist, lead):
    """Issue 8.8: one cancer and one other breast gave "AUC 1.000 (95 % CI 1.000–1.000)"."""
    ann, ben = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")
    study = make_study(technologist, "88")
    double_read(study, ann, ben, first_recalls="R", second_recalls="R")
    reading.outcome_record(study_id=study.pk, laterality="R", truth="malignant", user=lead)
    reading.outcome_record(study_id=study.pk, laterality="L", truth="normal", user=lead)
    predict_breasts(study, model_version("m"), 0.9, 0.1)
    report = performance.performance_report(user=lead)
    assert report.ai.auc is None and report.ai.auc_low is None and not report.ai.sensitivity.enough
    assert performance.ai_roc_curve(user=lead) is None
    client.force_login(lead)
    page = client.get("/performance/").content.decode()
    assert "1.000" not in page and "100.0 %" not in page
    assert "not enough data" in page and "1 malignant and 1 non-malignant breasts" in page
    assert client.get("/performance/roc.png").status_code == 404


def test_pages_round_scores_and_percentages_for_people():
    from cases.templatetags.figures import percent, score, scores

    assert score(0.41999999999999998) == "0.420" and score(1 / 3) == "0.333" and score("–") == "–"
    assert scores((0.5, 1 / 3)) == "0.500, 0.333"
    assert percent(0.11640000000000001) == "11.6 %"


@pytest.mark.django_db
def test_it_says_not_enough_data_without_outcomes(client, lead, technologist):
    make_study(technologist, "91")  # a study, but no outcome
    client.force_login(lead)
    response = client.get("/performance/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "0 studies with a recorded outcome" in page and "not enough data" in page
    assert "roc.png" not in page
    assert client.get("/performance/roc.png").status_code == 404
    report = response.context["report"]
    assert report.ai.breasts == 0 and report.ai.auc is None and report.readers == []
    assert not report.programme.sensitivity.enough and not report.programme.recall_rate.enough


@pytest.mark.django_db
def test_partial_data_gives_figures_only_where_there_is_a_denominator(client, lead, technologist):
    """One normal study with one read so far and no AI result: the reader's specificity (1 of 1), but no
    sensitivity, no programme figures (no final decision yet) and no AI figures (no AI result)."""
    ann = make_user(Role.RADIOLOGIST, "ann")
    study = make_study(technologist, "92")
    read = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=assessments(""))
    for side in "RL":
        reading.outcome_record(study_id=study.pk, laterality=side, truth="normal", user=lead)
    report = performance.performance_report(user=lead)
    [reader] = report.readers
    assert not reader.sensitivity.enough
    _check(reader.specificity, 1, 1)
    assert report.programme.studies == 0 and report.studies_awaiting_decision == 1
    assert report.ai.breasts == 0 and report.ai.breasts_without_ai == 2 and not report.ai.specificity.enough
    client.force_login(lead)
    page = client.get("/performance/").content.decode()
    assert "1 of 1 non-cancers" in page and "0 cancers" in page and "not enough data" in page
    assert "2 breasts with an outcome but no AI result are left out" in page


@pytest.mark.parametrize("seed", range(5))
def test_the_counting_auc_bootstrap_gives_the_ranking_bootstraps_interval_to_the_last_bit(seed):
    """inference.metrics.bootstrap_auc_ci (the page's, fast) against bootstrap_ci(roc_auc) (the evaluation's)."""
    import numpy as np

    from inference.metrics import bootstrap_auc_ci, bootstrap_ci, roc_auc

    rng = np.random.default_rng(seed)
    n = (40, 300, 1000, 25, 2000)[seed]
    labels = rng.random(n) < (0.3, 0.05, 0.5, 0.2, 0.02)[seed]
    scores = np.round(rng.random(n) + 0.3 * labels, (1, 2, 3, 1, 6)[seed])  # with ties
    assert bootstrap_auc_ci(labels, scores, n=300, seed=seed) == bootstrap_ci(roc_auc, labels, scores, n=300, seed=seed)
    assert all(np.isnan(bootstrap_auc_ci(np.zeros(5, bool), np.ones(5))))
