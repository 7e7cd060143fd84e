"""The local acceptance test of a model (inference.acceptance, docs/adr/0009): a lead's protocol locked before
results, the report's figures on the real database worked out by hand, "insufficient" below the minimums, sign-off
only by a lead and only on a passing report, and acceptance (hence activation) only through it.

The set: one screen per woman, R and L CC images, the model in shadow (its predictions are shadow predictions).

study  date        first  second  arbitration  final      outcome             model R / L -> screen score
S1     2025-03-01  R      R       -            recall     malignant / normal  .90 / .10 -> .90  (model recalls)
S2     2025-03-02  -      L       L            recall     normal / malignant  .20 / .40 -> .40
S3     2025-03-03  -      -       -            no recall  normal / normal     .30 / .20 -> .30
S4     2025-03-04  R      -       none         no recall  normal / normal     .60 / .10 -> .60  (model recalls)
S5     2025-03-05  -      -       -            no recall  normal / normal     .10 / .05 -> .10
S6     2025-03-06  -      -       -            no recall  normal / normal     .35 / .20 -> .35
S7     2024-12-01  -      -       -            no recall  malignant / normal  .05 / .05          (outside the period)

By hand, on S1-S6 (2 cancers, 4 non-cancers), the model at threshold .5:
- AUC: of the 2 x 4 cancer/non-cancer pairs the cancer scores higher in 7 (.90 beats all four; .40 beats .30, .10,
  .35, not .60): 7/8 = 0.875.
- Model: recalls S1, S4: sensitivity 1/2 = .5, specificity 3/4 = .75, recall rate 2/6.
- First reader: recalls S1, S4: sensitivity .5, specificity .75, recall rate 2/6.
- Double reading: recalls S1, S2 (S4's discordance cleared by arbitration): sensitivity 2/2 = 1, specificity 4/4 = 1,
  recall rate 2/6.
- Subgroup "Hologic" (S1-S3, manufacturer set below): 2 cancers, 1 non-cancer, AUC 2/2 = 1.0.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction

from accounts.roles import Role
from audit.models import AuditEvent
from cases.models import Image, Study
from cases.reading import claims
from cases.reading import services as reading
from cases.studies.ingestion import IncomingFile, study_upload
from core.errors import ApplicationError
from inference.acceptance.services import (
    acceptance_protocol_lock,
    acceptance_report_compute,
    acceptance_report_sign_off,
)
from inference.lifecycle import model_version_activate, model_version_status_change
from inference.models import AcceptanceProtocol, InferenceJob, ModelStatusChange, ModelVersion, Prediction
from tests.conftest import api_client_for, make_user
from tests.dicom_factory import make_dicom
from tests.test_performance import assessments

SCREENS = {
    # name: (date, first recalls, second recalls, arbitration recalls or None, outcome R/L, score R/L)
    "S1": (date(2025, 3, 1), "R", "R", None, ("malignant", "normal"), (0.90, 0.10)),
    "S2": (date(2025, 3, 2), "", "L", "L", ("normal", "malignant"), (0.20, 0.40)),
    "S3": (date(2025, 3, 3), "", "", None, ("normal", "normal"), (0.30, 0.20)),
    "S4": (date(2025, 3, 4), "R", "", "", ("normal", "normal"), (0.60, 0.10)),
    "S5": (date(2025, 3, 5), "", "", None, ("normal", "normal"), (0.10, 0.05)),
    "S6": (date(2025, 3, 6), "", "", None, ("normal", "normal"), (0.35, 0.20)),
    "S7": (date(2024, 12, 1), "", "", None, ("malignant", "normal"), (0.05, 0.05)),
}
PASSING = {
    "period_start": date(2025, 1, 1), "period_end": date(2025, 12, 31), "min_cancers": 2, "min_screens": 6,
    "min_auc_lower": 0.0, "sensitivity_margin": 0.5, "min_specificity": 0.75, "max_recall_rate": 0.34,
    "n_bootstrap": 200,
}  # fmt: skip


def _read(study, user, recalled: str) -> None:
    claimed = claims.read_claim(study_id=study.pk, user=user)
    reading.read_submit(density="b", read_id=claimed.pk, user=user, assessments=assessments(recalled))


def _shadow_predict(image, version, probability: float) -> Prediction:
    job = InferenceJob.all_objects.create(
        image=image, model_version=version, status=InferenceJob.Status.SUCCEEDED, shadow=True
    )
    return Prediction.all_objects.create(
        job=job, image=image, model_version=version, probability=probability, raw_probability=probability,
        threshold=version.threshold, label="malignant" if probability >= version.threshold else "benign",
        input_sha256=image.sha256, shadow=True,
    )  # fmt: skip


@pytest.fixture
def site(db, technologist, lead):
    ann, ben = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")
    studies = {}
    for n, (name, (day, first, second, arbitration, _outcome, _score)) in enumerate(SCREENS.items()):
        files = [
            IncomingFile.from_bytes(
                f"{side}_CC.dcm", make_dicom(sop_uid=f"2.21.{n}.{i}", laterality=side, view="CC", patient_id=f"w-{n}")
            )
            for i, side in enumerate("RL")
        ]
        study = study_upload(user=technologist, files=files, study_date=day).study
        Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
        _read(study, ann, first)
        _read(study, ben, second)
        if arbitration is not None:
            reading.arbitration_submit(density="b", study_id=study.pk, user=lead, assessments=assessments(arbitration))
        studies[name] = study
    # The model arrives after the screens (so no shadow job was queued for them at upload) and is in shadow.
    version = ModelVersion.objects.create(
        name="acme-2", backbone="custom", input_size=64, file="acme.keras", file_sha256="a" * 64,
        preprocessing_version="1", threshold=0.5, status="shadow",
    )  # fmt: skip
    for name, study in studies.items():
        *_, outcome, score = SCREENS[name]
        for side, truth, probability in zip("RL", outcome, score, strict=True):
            reading.outcome_record(study_id=study.pk, laterality=side, truth=truth, user=lead)
            _shadow_predict(study.images.get(laterality=side), version, probability)
    Image.objects.filter(study__in=[studies[n] for n in ("S1", "S2", "S3")]).update(manufacturer="Hologic")
    Image.objects.filter(study__in=[studies[n] for n in ("S4", "S5", "S6", "S7")]).update(manufacturer="GE")
    for study in studies.values():
        study.refresh_from_db()
        assert study.final_recall is not None, study
    return {"studies": studies, "version": version}


def _protocol(lead, version, **changes) -> AcceptanceProtocol:
    return acceptance_protocol_lock(user=lead, model_version=version, **(PASSING | changes))


def test_it_computes_the_figures_worked_out_by_hand(site, lead):
    report = acceptance_report_compute(user=lead, protocol=_protocol(lead, site["version"]))
    f = report.figures
    assert (f["screens"], f["cancers"], f["women"]) == (6, 2, 6)  # S7 is outside the period
    assert f["model"]["auc"]["value"] == pytest.approx(7 / 8)
    low, high = f["model"]["auc"]["low"], f["model"]["auc"]["high"]
    assert 0.0 <= low <= 7 / 8 <= high <= 1.0
    expected = {
        "model": (1 / 2, 3 / 4, 2 / 6),
        "first_reader": (1 / 2, 3 / 4, 2 / 6),
        "double_reading": (1.0, 1.0, 2 / 6),
    }
    for who, (sensitivity, specificity, recall_rate) in expected.items():
        assert f[who]["sensitivity"]["value"] == pytest.approx(sensitivity), who
        assert f[who]["specificity"]["value"] == pytest.approx(specificity), who
        assert f[who]["recall_rate"]["value"] == pytest.approx(recall_rate), who
        for metric in ("sensitivity", "specificity", "recall_rate"):
            figure = f[who][metric]
            assert figure["low"] <= figure["value"] <= figure["high"], (who, metric, figure)
    assert (f["model"]["sensitivity"]["numerator"], f["model"]["sensitivity"]["denominator"]) == (1, 2)
    hologic = next(g for g in f["subgroups"]["manufacturer"] if g["group"] == "Hologic")
    assert (hologic["screens"], hologic["cancers"], hologic["model"]["auc"]["value"]) == (3, 2, 1.0)
    assert [(g["group"], g["screens"]) for g in f["subgroups"]["age_band"]] == [("50-59", 6)]  # born 1965-04-12
    assert {c["criterion"]: c["passed"] for c in f["criteria"]} == {
        "auc_lower": True, "sensitivity": True, "specificity": True, "recall_rate": True,
    }  # fmt: skip
    assert report.result == "pass"
    assert AuditEvent.objects.filter(action="model.acceptance_computed", object_id=str(report.pk)).exists()
    # One criterion missed: fail (sensitivity .5 < double reading's 1.0 - .4).
    failing = acceptance_report_compute(user=lead, protocol=_protocol(lead, site["version"], sensitivity_margin=0.4))
    assert failing.result == "fail"
    assert [c["criterion"] for c in failing.figures["criteria"] if not c["passed"]] == ["sensitivity"]


def test_the_protocol_is_locked_when_saved(site, lead):
    protocol = _protocol(lead, site["version"])
    assert AuditEvent.objects.filter(action="model.acceptance_protocol_locked", object_id=str(protocol.pk)).exists()
    protocol.min_cancers = 1
    with pytest.raises(ValueError, match="locked"):
        protocol.save()
    with pytest.raises(ValueError, match="locked"):
        protocol.delete()
    with pytest.raises(Exception, match="locked"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE inference_acceptanceprotocol SET min_cancers = 1 WHERE id = %s", [protocol.pk])
    report = acceptance_report_compute(user=lead, protocol=protocol)
    with pytest.raises(Exception, match="locked"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE inference_acceptancereport SET result = 'fail' WHERE id = %s", [report.pk])
    assert AcceptanceProtocol.objects.get(pk=protocol.pk).min_cancers == 2


def test_too_few_cancers_or_screens_is_insufficient_never_a_pass(site, lead):
    for changes in ({"min_cancers": 3}, {"min_screens": 7}):
        report = acceptance_report_compute(user=lead, protocol=_protocol(lead, site["version"], **changes))
        assert report.result == "insufficient", changes
        assert all(c["passed"] for c in report.figures["criteria"])  # every criterion met, still not a pass
        with pytest.raises(ApplicationError, match="Only a passing report"):
            acceptance_report_sign_off(user=lead, report=report)


def test_sign_off_only_by_a_lead_and_only_on_a_pass_accepts_the_model(site, lead, radiologist, admin_user, client):
    version = site["version"]
    for user in (radiologist, admin_user):
        with pytest.raises(PermissionDenied):
            _protocol(user, version)
    passing = acceptance_report_compute(user=lead, protocol=_protocol(lead, version))
    failing = acceptance_report_compute(user=lead, protocol=_protocol(lead, version, min_specificity=0.9))
    assert failing.result == "fail"
    with pytest.raises(ApplicationError, match="Only a passing report"):
        acceptance_report_sign_off(user=lead, report=failing)
    for user in (radiologist, admin_user):
        with pytest.raises(PermissionDenied):
            acceptance_report_sign_off(user=user, report=passing)
    # Only an accepted model becomes active: not this one yet, and not without evidence.
    with pytest.raises(ApplicationError, match="only an accepted model"):
        model_version_activate(model_version=version, confirm_unvalidated=True, actor=admin_user)
    with pytest.raises(ApplicationError, match="acceptance report"):
        model_version_status_change(model_version=version, to_status="accepted", reason="x", actor=admin_user)
    acceptance_report_sign_off(user=lead, report=passing, note="Meets the protocol.")
    version.refresh_from_db()
    assert version.status == "accepted"
    change = ModelStatusChange.objects.filter(model_version=version).latest("pk")
    assert change.to_status == "accepted" and change.acceptance_report_id == passing.pk
    assert change.changed_by == lead and "acceptance report" in change.reason
    assert AuditEvent.objects.filter(action="model.acceptance_signed_off", actor_id=lead.pk).count() == 1
    with pytest.raises(ApplicationError, match="already signed off|only accepts"):
        acceptance_report_sign_off(user=lead, report=passing)
    # The inventory says so, beside the vendor's figures; and now it can be made active.
    client.force_login(admin_user)
    page = client.get("/models/").content.decode()
    assert f"Accepted at this site on {passing.__class__.objects.get(pk=passing.pk).signed_off_at:%Y-%m-%d} by " \
           f"{lead.username}" in page  # fmt: skip
    body = api_client_for(admin_user).get(f"/api/models/{version.pk}/").json()
    assert body["local_acceptance"]["report_id"] == passing.pk and body["local_acceptance"]["auc"] == 0.875
    model_version_activate(model_version=version, confirm_unvalidated=True, actor=admin_user)
    version.refresh_from_db()
    assert version.is_active


def test_the_pages_api_and_exports(site, lead, radiologist, client):
    version = site["version"]
    client.force_login(radiologist)
    assert client.get(f"/models/{version.pk}/acceptance/").status_code == 403
    client.force_login(lead)
    page = client.get(f"/models/{version.pk}/acceptance/")
    assert page.status_code == 200 and "Lock the protocol" in page.content.decode()
    form = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in PASSING.items()}
    assert client.post(f"/models/{version.pk}/acceptance/protocol/", form).status_code == 302
    protocol = AcceptanceProtocol.objects.get(model_version=version)
    assert client.post(f"/models/{version.pk}/acceptance/protocols/{protocol.pk}/compute/").status_code == 302
    report = protocol.reports.get()
    assert report.result == "pass"
    page = client.get(f"/models/{version.pk}/acceptance/").content.decode()
    assert "Report" in page and "Sign off" in page and "0.875" in page
    exported = client.get(f"/models/{version.pk}/acceptance/reports/{report.pk}.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(exported)))
    auc = next(r for r in rows if r["subgroup"] == "all" and r["who"] == "model" and r["metric"] == "auc")
    assert float(auc["value"]) == pytest.approx(0.875)
    assert client.get(f"/models/{version.pk}/acceptance/reports/{report.pk}.json").json()["result"] == "pass"
    api = api_client_for(lead)
    listed = api.get(f"/api/models/{version.pk}/acceptance/").json()
    assert listed[0]["reports"][0]["id"] == report.pk
    body = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in (PASSING | {"min_cancers": 5}).items()}
    created = api.post(f"/api/models/{version.pk}/acceptance/protocols/", body, format="json")
    assert created.status_code == 201, created.content
    computed = api.post(f"/api/models/{version.pk}/acceptance/protocols/{created.json()['id']}/reports/")
    assert computed.status_code == 201 and computed.json()["result"] == "insufficient"
    refused = api.post(f"/api/models/{version.pk}/acceptance/reports/{computed.json()['id']}/sign-off/", {})
    assert refused.status_code == 400
    signed = api.post(f"/api/models/{version.pk}/acceptance/reports/{report.pk}/sign-off/", {"note": "ok"})
    assert signed.status_code == 200 and signed.json()["signed_off_by"] == lead.username
    assert api_client_for(radiologist).get(f"/api/models/{version.pk}/acceptance/").status_code == 403
