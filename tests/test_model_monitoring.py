"""Model monitoring and stop rules (issue 21 items 4-5, inference.monitoring): the statistics against hand-computed
values; seeded predictions on the real database with no drift (no alert) and with injected drift (a new
manufacturer, a shifted score distribution, a flag rate out of range for N days), each tripping exactly the rules
it should; a trip suspends the model, readers then see no AI and new reads record ai_available false; only a lead
resumes it, with a reason; audit rows; the beat schedule and an idempotent run; pages and API by capability."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from cases.ai_visibility import ai_access
from cases.models import BreastAssessment, Image, Outcome, Patient, Read, Study
from cases.reading import claims
from cases.reading.worklist import Queue, queue_ai_access
from core.errors import ApplicationError
from inference.lifecycle import model_version_status_change
from inference.models import InferenceJob, ModelMonitoringDay, ModelVersion, Prediction, StopRule, StopRuleTrip
from inference.monitoring import stats
from inference.monitoring.compute import baseline_range, monitoring_run, monitoring_series
from inference.monitoring.stop_rules import model_resume, stop_rule_save
from tests.conftest import api_client_for

# ------------------------------------------------------------------------------------------ the statistics


def test_histogram_uses_ten_fixed_bins_with_the_last_closed():
    assert stats.histogram([0.0, 0.05, 0.1, 0.15, 0.15, 0.5, 0.95, 1.0]) == [2, 3, 0, 0, 0, 1, 0, 0, 0, 2]


def test_psi_equals_the_hand_computed_value():
    # shares 0.5/0.5 -> 0.25/0.75: (0.25-0.5)ln(0.5) + (0.75-0.5)ln(1.5) = 0.173287 + 0.101366
    assert stats.psi([50, 50], [25, 75]) == pytest.approx(0.274653, abs=1e-6)
    # an empty bin is floored at 1e-4: (0.5-1)ln(0.5) + (0.5-0.0001)ln(5000) = 0.346574 + 4.257745
    assert stats.psi([10, 0], [5, 5]) == pytest.approx(4.604319, abs=1e-6)
    assert stats.psi([3, 7], [30, 70]) == pytest.approx(0.0, abs=1e-12)
    assert stats.psi([], [1]) is None


def test_ks_equals_the_hand_computed_values():
    # Fully separated samples of 3: D = 1; exactly 2 of the C(6,3) = 20 orderings are as extreme: p = 0.1.
    d, p = stats.ks_test([1, 2, 3], [4, 5, 6])
    assert d == pytest.approx(1.0) and p == pytest.approx(0.1)
    # Empirical CDFs differ by at most 0.5 (at 0.2 and at 0.4).
    d, _ = stats.ks_test([0.1, 0.2, 0.3, 0.4], [0.3, 0.4, 0.5, 0.6])
    assert d == pytest.approx(0.5)
    d, p = stats.ks_test([0.1, 0.2], [0.1, 0.2])
    assert d == 0 and p == pytest.approx(1.0)


def test_cusum_equals_the_hand_computed_sums():
    # p0 = 0.5, 100 studies: se = 0.05. Day 1 at 0.5: z = 0; day 2 at 0.7: z = 4 -> upper 3.5; day 3 at 0.3:
    # z = -4 -> upper max(0, 3.5 - 4.5) = 0, lower max(0, 0 + 4 - 0.5) = 3.5; a day without studies carries over.
    sums = stats.cusum([(0.5, 100), (0.7, 100), (0.3, 100), (None, 0)], p0=0.5)
    assert [value for pair in sums for value in pair] == pytest.approx([0.0, 0.0, 3.5, 0.0, 0.0, 3.5, 0.0, 3.5])
    assert stats.cusum([(0.5, 10)], p0=None) == [(None, None)]


# ------------------------------------------------------------------------------------------ seeded predictions

# One day of a stable model: 10 studies of two images (right, left), 20 scores; studies 7, 8, 9 hold a score at or
# above the operating point 0.5: a flag rate of 0.3.
SCORES = [0.02, 0.05, 0.08, 0.12, 0.15, 0.18, 0.22, 0.25, 0.28, 0.32,
          0.35, 0.38, 0.42, 0.45, 0.48, 0.52, 0.55, 0.62, 0.75, 0.85]  # fmt: skip
PAIRS = [(SCORES[2 * k], SCORES[2 * k + 1]) for k in range(10)]
# The same 20 scores paired so that 5 studies are flagged (0.5): the score distribution does not change at all.
PAIRS_FLAG_HIGH = [(0.02, 0.52), (0.05, 0.55), (0.08, 0.62), (0.12, 0.75), (0.15, 0.85),
                   (0.18, 0.22), (0.25, 0.28), (0.32, 0.35), (0.38, 0.42), (0.45, 0.48)]  # fmt: skip
# Scores below the operating point squeezed into [0.38, 0.48): same flagged studies, a different distribution.
PAIRS_SHIFTED = [(0.38 + a * 0.2 if a < 0.5 else a, 0.38 + b * 0.2 if b < 0.5 else b) for a, b in PAIRS]
START = date(2026, 10, 1)  # the first day of predictions: the baseline is START .. START + 27
AFTER = START + timedelta(days=28)  # the first day after the baseline
EQUIPMENT = {"manufacturer": "HOLOGIC", "model_name": "Selenia Dimensions", "software": "1.10.2"}


class Seeder:
    def __init__(self, user):
        self.user = user
        self.n = 0

    def day(self, model, day: date, pairs=PAIRS, **equipment) -> list[Study]:
        kit = {**EQUIPMENT, **equipment}
        at = timezone.make_aware(datetime.combine(day, time(12)))
        studies = []
        for scores in pairs:
            self.n += 1
            patient = Patient.objects.create(patient_id=f"MON{self.n}")
            study = Study.objects.create(patient=patient, created_by=self.user, status=Study.Status.FINAL)
            studies.append(study)
            for side, score in zip("RL", scores, strict=True):
                sha = f"{self.n:08d}{side}".ljust(64, "0")
                image = Image.objects.create(
                    study=study, original_filename=f"{side}.dcm", original=sha, sha256=sha, size_bytes=1,
                    source_format="dicom", preview="p", laterality=side, view="CC", rows=10, columns=10,
                    bits_stored=12, photometric_interpretation="MONOCHROME2", manufacturer=kit["manufacturer"],
                    dicom_attributes={"ManufacturerModelName": kit["model_name"], "SoftwareVersions": kit["software"]},
                    uploaded_by=self.user,
                )  # fmt: skip
                job = InferenceJob.objects.create(image=image, model_version=model, status="succeeded")
                prediction = Prediction.objects.create(
                    job=job, image=image, model_version=model, probability=score, raw_probability=score,
                    threshold=model.threshold, label="malignant" if score >= model.threshold else "benign",
                    input_sha256=sha,
                )  # fmt: skip
                Prediction.objects.filter(pk=prediction.pk).update(created_at=at)
        return studies

    def baseline(self, model, days: int = 28) -> None:
        for offset in range(days):
            self.day(model, START + timedelta(days=offset))


def make_model(name: str = "monitored", status: str = "active") -> ModelVersion:
    return ModelVersion.objects.create(
        name=name, backbone="custom", input_size=64, file=f"{name}.keras", file_sha256=name.ljust(64, "0"),
        preprocessing_version="1", threshold=0.5, status=status, is_active=status == "active",
    )  # fmt: skip


@pytest.fixture
def seeded(db, technologist):
    model = make_model()
    seeder = Seeder(technologist)
    seeder.baseline(model)
    return model, seeder


@pytest.fixture
def rules(db, lead):
    """One rule of each kind, for every malignancy model."""
    made = {
        "flag": StopRule(model_kind="malignancy", rule_type="flag_rate", low=0.1, high=0.4, consecutive_days=3),
        "unseen": StopRule(model_kind="malignancy", rule_type="unseen_equipment"),
        "psi": StopRule(model_kind="malignancy", rule_type="psi_above", threshold=0.25),
        "ks": StopRule(model_kind="malignancy", rule_type="ks_p_below", threshold=0.01),
    }
    return {name: stop_rule_save(user=lead, rule=rule) for name, rule in made.items()}


def run(model, end: date, days: int = 40):
    return monitoring_run(model_ids=[model.pk], end=end, days=days, via="test")


def tripped(model) -> set[int]:
    return set(StopRuleTrip.objects.filter(model_version=model).values_list("rule_id", flat=True))


@pytest.mark.django_db
def test_the_default_baseline_is_the_first_28_days_and_a_stable_model_raises_no_alert(seeded, rules):
    model, seeder = seeded
    for offset in range(5):
        seeder.day(model, AFTER + timedelta(days=offset))
    assert baseline_range(model) == (START, START + timedelta(days=27))
    run(model, AFTER + timedelta(days=4))
    model.refresh_from_db()
    assert model.status == "active" and not tripped(model)
    rows = ModelMonitoringDay.objects.filter(model_version=model)
    assert rows.count() == 33 and rows.filter(in_baseline=True).count() == 28
    row = rows.get(day=AFTER)
    assert (row.predictions, row.studies, row.views_per_exam, row.flag_rate) == (20, 10, 2.0, 0.3)
    assert row.psi == pytest.approx(0.0) and row.ks_statistic == pytest.approx(0.0) and row.ks_p_value > 0.99
    assert row.inputs["manufacturer"] == {"HOLOGIC": 20} and row.unseen_equipment == []
    assert rows.get(day=START).psi is None  # a baseline day is not compared with itself
    series = monitoring_series(model)
    assert series["baseline"]["flag_rate"] == pytest.approx(0.3) and len(series["days"]) == 33
    assert series["days"][-1]["cusum_upper"] == pytest.approx(0.0)


@pytest.mark.django_db
def test_a_new_manufacturer_trips_the_unseen_equipment_rule_only(seeded, rules):
    model, seeder = seeded
    seeder.day(model, AFTER, manufacturer="NEWVENDOR")
    run(model, AFTER)
    assert tripped(model) == {rules["unseen"].pk}
    row = ModelMonitoringDay.objects.get(model_version=model, day=AFTER)
    assert row.unseen_equipment == [{"field": "manufacturer", "value": "NEWVENDOR", "images": 20}]
    model.refresh_from_db()
    assert model.status == "suspended"
    change = model.status_changes.last()
    assert change.changed_by_name == f"stop rule {rules['unseen'].pk}" and "NEWVENDOR" in change.reason


@pytest.mark.django_db
def test_a_shifted_score_distribution_trips_the_psi_and_ks_rules_only(seeded, rules):
    model, seeder = seeded
    seeder.day(model, AFTER, pairs=PAIRS_SHIFTED)
    run(model, AFTER)
    row = ModelMonitoringDay.objects.get(model_version=model, day=AFTER)
    assert row.flag_rate == pytest.approx(0.3)  # the operating point's view is unchanged
    assert row.psi > 0.25 and row.ks_p_value < 0.01
    assert tripped(model) == {rules["psi"].pk, rules["ks"].pk}
    trip = StopRuleTrip.objects.get(rule=rules["psi"])
    assert trip.figures["psi"] == pytest.approx(row.psi, abs=1e-4)


@pytest.mark.django_db
def test_a_flag_rate_out_of_range_trips_only_after_n_consecutive_days(seeded, rules):
    model, seeder = seeded
    for offset in range(3):
        seeder.day(model, AFTER + timedelta(days=offset), pairs=PAIRS_FLAG_HIGH)
    run(model, AFTER + timedelta(days=1))
    assert not tripped(model)  # two days out of range: not yet
    run(model, AFTER + timedelta(days=2))
    assert tripped(model) == {rules["flag"].pk}
    row = ModelMonitoringDay.objects.get(model_version=model, day=AFTER + timedelta(days=2))
    assert row.flag_rate == pytest.approx(0.5) and row.psi == pytest.approx(0.0)
    assert monitoring_series(model)["days"][-1]["cusum_upper"] > 0  # the CUSUM sees it too


@pytest.mark.django_db
def test_a_shadow_model_is_monitored_and_reported_never_suspended(technologist, rules):
    model = make_model("shadowed", status="shadow")
    seeder = Seeder(technologist)
    seeder.baseline(model)
    seeder.day(model, AFTER, manufacturer="NEWVENDOR")
    run(model, AFTER)
    model.refresh_from_db()
    assert model.status == "shadow" and tripped(model) == {rules["unseen"].pk}
    assert StopRuleTrip.objects.get(model_version=model).suspended is False


@pytest.mark.django_db
def test_agreement_and_sensitivity_follow_the_final_reads_and_outcomes(seeded, lead, radiologist):
    model, seeder = seeded
    studies = seeder.day(model, AFTER)
    # Study 9 (scores 0.75, 0.85: the AI flags both breasts): recalled right only, malignant right.
    # Study 0 (0.02, 0.05: no flag): recalled left, which was malignant: a cancer the AI missed.
    for study, recalled in ((studies[9], "R"), (studies[0], "L")):
        read = Read.objects.create(study=study, kind="first", reader=radiologist, status="submitted",
                                   submitted_at=timezone.now(), recall=True)  # fmt: skip
        for side in "RL":
            recall = side == recalled
            BreastAssessment.objects.create(read=read, laterality=side, birads=4 if recall else 1, recall=recall,
                                            ai_agreement="not_shown")  # fmt: skip
        Outcome.objects.create(study=study, laterality=recalled, truth="malignant", recorded_by=lead)
    run(model, AFTER)
    row = ModelMonitoringDay.objects.get(model_version=model, day=AFTER)
    # Breasts: 9R AI+ recall, 9L AI+ no recall, 0R AI- no recall, 0L AI- recall: 2 of 4 agree.
    assert row.agreement["breast"] == {"compared": 4, "ai_recall": 1, "ai_no_recall": 1, "no_ai_recall": 1,
                                       "no_ai_no_recall": 1, "rate": 0.5}  # fmt: skip
    assert row.agreement["study"]["compared"] == 2 and row.agreement["study"]["rate"] == 0.5
    assert row.outcomes == {"malignant_breasts": 2, "flagged": 1, "sensitivity": 0.5}


# ------------------------------------------------------------------------------------------ suspension and resume


@pytest.fixture
def readable_study(db, technologist, seeded):
    """A study awaiting reads whose images have a result of the monitored model."""
    model, seeder = seeded
    study = seeder.day(model, timezone.localdate(), pairs=[(0.7, 0.2)])[0]
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    return Study.objects.get(pk=study.pk)


@pytest.mark.django_db
def test_a_trip_suspends_the_model_readers_see_no_ai_and_reads_are_unaided_until_a_lead_resumes(
    settings, seeded, rules, readable_study, radiologist, lead, admin_user, django_capture_on_commit_callbacks
):
    settings.READERS_SEE_AI, settings.AI_REVEAL = True, "on_request"
    settings.EMAIL_HOST = "mail.example.org"
    lead.email = "lead@example.org"
    lead.save()
    model, seeder = seeded
    assert ai_access(user=radiologist, study=Study.objects.get(pk=readable_study.pk)).shown
    seeder.day(model, AFTER, manufacturer="NEWVENDOR")
    with django_capture_on_commit_callbacks(execute=True):
        run(model, AFTER)
    model.refresh_from_db()
    assert model.status == "suspended"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["lead@example.org"]
    assert "suspended" in mail.outbox[0].subject

    # Readers: no AI on the study, none in the worklist's sort, and a read claimed now is unaided.
    study = Study.objects.get(pk=readable_study.pk)
    access = ai_access(user=radiologist, study=study)
    assert not access.shown and "suspended" in access.reason
    assert queue_ai_access(user=radiologist, queue=Queue.AWAITING_FIRST) is False
    assert queue_ai_access(user=lead, queue=Queue.COMPLETED) is False
    read = claims.read_claim(study_id=study.pk, user=radiologist)
    assert read.ai_available is False and read.ai_reveal == Read.AiReveal.NONE
    page = api_client_for(radiologist).get(f"/api/studies/{study.pk}/")
    assert page.status_code == 200 and [image["prediction"] for image in page.json()["images"]] == [None, None]

    # Leads are told in the platform: the alert list on the inventory and the worklist.
    client = api_client_for(lead)
    assert [a["model_name"] for a in client.get("/api/models/alerts/").json()] == [model.name]
    from django.test import Client

    browser = Client()
    browser.force_login(lead)
    for url in ("/models/", "/reading/"):
        page = browser.get(url)
        assert page.status_code == 200 and b"AI model alerts" in page.content and b"NEWVENDOR" in page.content, url
    browser.force_login(admin_user)
    detail = browser.get(f"/models/{model.pk}/")
    assert b'value="active"' not in detail.content and b'value="retired"' in detail.content  # a lead resumes

    # Nobody but a lead resumes it: not the administrator (page, API, lifecycle), not a radiologist.
    assert api_client_for(admin_user).post(f"/api/models/{model.pk}/resume/", {"reason": "x"}).status_code == 403
    assert api_client_for(radiologist).post(f"/api/models/{model.pk}/resume/", {"reason": "x"}).status_code == 403
    response = api_client_for(admin_user).post(
        f"/api/models/{model.pk}/status/", {"to_status": "active", "reason": "x"}, format="json"
    )
    assert response.status_code == 400 and "only a lead radiologist" in response.json()["detail"]
    with pytest.raises(ApplicationError, match="only a lead"):
        model_version_status_change(model_version=model, to_status="active", reason="x", actor_name="a command")
    with pytest.raises(ApplicationError, match="reason"):
        model_resume(model_version=model, user=lead, reason=" ")
    reason = {"reason": "Checked the new unit's images."}
    response = client.post(f"/api/models/{model.pk}/resume/", reason)
    assert response.status_code == 400 and "not validated" in response.json()["detail"]  # confirmed again, as ever
    response = client.post(f"/api/models/{model.pk}/resume/", {**reason, "confirm_unvalidated": True})
    assert response.status_code == 200, response.content
    model.refresh_from_db()
    assert model.status == "active"
    assert model.status_changes.last().reason == "Resumed by a lead radiologist: Checked the new unit's images."
    assert StopRuleTrip.objects.get(model_version=model).resolved_by == lead
    assert client.get("/api/models/alerts/").json() == []
    assert ai_access(user=make_second_reader(), study=Study.objects.get(pk=study.pk)).shown

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"model.stop_rule_changed", "model.monitoring_computed", "model.stop_rule_tripped", "model.resumed",
            "model.status_changed"} <= actions  # fmt: skip
    tripped_row = AuditEvent.objects.get(action="model.stop_rule_tripped")
    assert tripped_row.details["suspended"] is True and tripped_row.details["rule"] == rules["unseen"].pk
    # The run again on the same day does not trip (and suspend) the resumed model again.
    run(model, AFTER)
    model.refresh_from_db()
    assert model.status == "active" and StopRuleTrip.objects.count() == 1


def make_second_reader():
    from accounts.roles import Role
    from tests.conftest import make_user

    return make_user(Role.RADIOLOGIST, "second")


# ------------------------------------------------------------------------------------------ schedule, runs, access


def test_the_daily_task_is_in_the_beat_schedule_and_registered(settings):
    from celery.schedules import crontab

    from mammo_platform.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["model-monitoring"]
    assert entry["task"] == "inference.model_monitoring" and isinstance(entry["schedule"], crontab)
    app.loader.import_default_modules()
    assert "inference.model_monitoring" in app.tasks


@pytest.mark.django_db
def test_the_on_demand_run_goes_through_the_outbox_and_running_twice_leaves_one_row_per_day(seeded, lead):
    from core.models import OutboxMessage
    from inference.tasks import model_monitoring

    model, seeder = seeded
    seeder.day(model, AFTER)
    response = api_client_for(lead).post(f"/api/models/{model.pk}/monitoring/run/")
    assert response.status_code == 202
    message = OutboxMessage.objects.get(pk=response.json()["message_id"])
    assert message.task == "inference.model_monitoring" and message.kwargs["model_ids"] == [model.pk]
    kwargs = {**message.kwargs, "end": AFTER.isoformat()}
    model_monitoring(**kwargs)
    first = dict(ModelMonitoringDay.objects.filter(model_version=model).values_list("day", "computed_at"))
    model_monitoring(**kwargs)
    second = dict(ModelMonitoringDay.objects.filter(model_version=model).values_list("day", "computed_at"))
    assert len(first) == len(second) == 29 and set(first) == set(second)
    assert all(second[day] > first[day] for day in first)  # recomputed, replaced
    assert AuditEvent.objects.filter(action="model.monitoring_requested").count() == 1
    assert AuditEvent.objects.filter(action="model.monitoring_computed").count() == 2


@pytest.mark.django_db
def test_pages_and_api_need_the_capability(client, seeded, lead, admin_user, radiologist, auditor):
    model, seeder = seeded
    run(model, START + timedelta(days=3))
    pages = [
        f"/models/{model.pk}/monitoring/",
        f"/models/{model.pk}/monitoring.csv",
        f"/models/{model.pk}/monitoring.json",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    for user in (radiologist, auditor):
        client.force_login(user)
        for url in pages:
            assert client.get(url).status_code == 403, (user.role, url)
        assert client.post(f"/models/{model.pk}/monitoring/run/").status_code == 403
        api = api_client_for(user)
        assert api.get(f"/api/models/{model.pk}/monitoring/").status_code == 403
        assert api.get("/api/models/stop-rules/").status_code == 403
    for user in (lead, admin_user):
        client.force_login(user)
        page = client.get(pages[0])
        assert page.status_code == 200 and b"<svg" in page.content
        assert not re.search(rb"<script(?![^>]*\bsrc=)", page.content)  # no inline script: the charts are SVG
        csv = client.get(pages[1])
        assert csv.status_code == 200 and csv.content.decode().startswith("day,in_baseline,predictions")
        assert len(client.get(pages[2]).json()["days"]) == 4
        api = api_client_for(user)
        series = api.get(f"/api/models/{model.pk}/monitoring/").json()
        assert [d["day"] for d in series["days"]][:1] == [START.isoformat()]
    assert AuditEvent.objects.filter(action="model.monitoring_exported").count() == 4


@pytest.mark.django_db
def test_stop_rules_are_listed_and_created_through_the_api_and_audited(seeded, lead, radiologist):
    model, _ = seeded
    api = api_client_for(lead)
    body = {"model_version": model.pk, "rule_type": "psi_above", "threshold": 0.2}
    response = api.post("/api/models/stop-rules/", body, format="json")
    assert response.status_code == 201, response.content
    assert "PSI above 0.2" in response.json()["description"]
    bad = api.post("/api/models/stop-rules/", {"model_kind": "malignancy", "rule_type": "ks_p_below"}, format="json")
    assert bad.status_code == 400
    assert [r["id"] for r in api.get(f"/api/models/stop-rules/?model={model.pk}").json()] == [response.json()["id"]]
    assert api_client_for(radiologist).post("/api/models/stop-rules/", body, format="json").status_code == 403
    assert AuditEvent.objects.filter(action="model.stop_rule_changed").count() == 1


def test_the_schema_documents_the_monitoring_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in ("/api/models/{id}/monitoring/", "/api/models/{id}/monitoring/run/", "/api/models/{id}/resume/",
                 "/api/models/stop-rules/", "/api/models/alerts/"):  # fmt: skip
        assert path in paths, path
    assert math.isfinite(stats.PSI_ACT)


@pytest.mark.django_db
def test_a_lead_adds_and_disables_stop_rules_and_runs_the_monitoring_from_the_page(client, seeded, lead):
    from core.models import OutboxMessage

    model, _ = seeded
    client.force_login(lead)
    base = f"/models/{model.pk}"
    form = {"scope": "kind", "rule_type": "flag_rate", "low": "0.05", "high": "0.5", "consecutive_days": "2"}
    assert client.post(f"{base}/stop-rules/", {**form, "enabled": "on"}).status_code == 302
    rule = StopRule.objects.get()
    assert (rule.model_version, rule.model_kind, rule.low, rule.high, rule.enabled) == (
        None,
        "malignancy",
        0.05,
        0.5,
        True,
    )
    assert client.post(f"{base}/stop-rules/{rule.pk}/toggle/").status_code == 302
    rule.refresh_from_db()
    assert rule.enabled is False
    refused = client.post(f"{base}/stop-rules/", {**form, "scope": "model", "rule_type": "psi_above", "low": ""})
    assert refused.status_code == 302 and StopRule.objects.count() == 1  # a PSI rule needs its threshold
    assert client.post(f"{base}/monitoring/run/").status_code == 302
    assert OutboxMessage.objects.filter(task="inference.model_monitoring").count() == 1
    page = client.get(f"{base}/monitoring/")
    assert b"flag rate outside [0.05, 0.5] for 2 consecutive day(s)" in page.content
    assert AuditEvent.objects.filter(action="model.stop_rule_changed").count() == 2


@pytest.mark.django_db
def test_the_command_computes_and_a_site_without_a_mail_server_sends_no_mail(
    settings, seeded, rules, lead, django_capture_on_commit_callbacks
):
    from io import StringIO

    from django.core.management import call_command

    settings.EMAIL_HOST = ""
    lead.email = "lead@example.org"
    lead.save()
    model, seeder = seeded
    seeder.day(model, AFTER, manufacturer="NEWVENDOR")
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("model_monitoring", f"--end={AFTER.isoformat()}", "--days=3", stdout=out)
    assert "monitored: 3 day(s) up to" in out.getvalue() and "stop rule trips" in out.getvalue()
    model.refresh_from_db()
    assert model.status == "suspended" and mail.outbox == []
    assert ModelMonitoringDay.objects.filter(model_version=model).count() == 3
