"""The screening decision rules (cases.reading.rules): screening BI-RADS only, recall follows from BI-RADS, agreement
with the AI follows from the decision and the AI's call; in the service, the database, the pages and the API."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from audit.models import AuditEvent
from cases.models import BreastAssessment, Read, Study
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.services import AssessmentInput
from core.errors import ApplicationError
from tests.conftest import api_client_for
from tests.test_reading import both, make_study, readers  # noqa: F401 (fixture)
from tests.test_reading_pages import ai_says


def one(side: str, birads: int, **extra) -> AssessmentInput:
    return AssessmentInput(laterality=side, birads=birads, **extra)


# ----------------------------------------------------------------------------------------------- BI-RADS, recall


@pytest.mark.django_db
def test_bi_rads_3_and_6_are_refused_in_a_screening_read_with_why(technologist, readers):  # noqa: F811
    study = make_study(technologist)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    with pytest.raises(ApplicationError, match=r"BI-RADS 3 .*not a screening outcome.*BI-RADS 0 \(recall"):
        reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 3), one("L", 1)])
    with pytest.raises(ApplicationError, match=r"BI-RADS 6 .*not a screening outcome"):
        reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 6)])
    read.refresh_from_db()
    assert not read.is_submitted and not BreastAssessment.objects.filter(read=read).exists()


@pytest.mark.django_db
def test_recall_follows_from_bi_rads_and_a_contradiction_is_refused(technologist, readers):  # noqa: F811
    study = make_study(technologist)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    with pytest.raises(ApplicationError, match="BI-RADS 5 means recall for assessment"):
        reading.read_submit(
            density="b", read_id=read.pk, user=ann, assessments=[one("R", 5, recall=False), one("L", 1)]
        )
    with pytest.raises(ApplicationError, match="BI-RADS 2 means routine screening"):
        reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 2, recall=True)])
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 0), one("L", 2)])
    stored = {a.laterality: a.recall for a in BreastAssessment.objects.filter(read=read)}
    assert stored == {"R": True, "L": False}
    read.refresh_from_db()
    assert read.recall is True
    event = AuditEvent.objects.get(action="read.submitted", object_id=str(read.pk))
    assert {b["laterality"]: (b["birads"], b["recall"]) for b in event.details["breasts"]} == {
        "R": (0, True),
        "L": (2, False),
    }


@pytest.mark.django_db
def test_arbitration_follows_the_same_rules(technologist, readers, lead):  # noqa: F811
    study = make_study(technologist)
    ann, ben = readers
    for user, recall_left in ((ann, True), (ben, False)):
        read = claims.read_claim(study_id=study.pk, user=user)
        reading.read_submit(density="b", read_id=read.pk, user=user, assessments=both(recall_left=recall_left))
    study.refresh_from_db()
    assert study.status == Study.Status.ARBITRATION
    with pytest.raises(ApplicationError, match="BI-RADS 3"):
        reading.arbitration_submit(density="b", study_id=study.pk, user=lead, assessments=[one("R", 1), one("L", 3)])
    with pytest.raises(ApplicationError, match="BI-RADS 4 means recall"):
        reading.arbitration_submit(
            density="b", study_id=study.pk, user=lead, assessments=[one("R", 1), one("L", 4, recall=False)]
        )
    arbitration = reading.arbitration_submit(
        density="b", study_id=study.pk, user=lead, assessments=[one("R", 1), one("L", 4)]
    )
    assert arbitration.recall is True


@pytest.mark.django_db
def test_the_database_refuses_contradicting_and_non_screening_rows(technologist, readers):  # noqa: F811
    study = make_study(technologist)
    read = Read.objects.create(study=study, kind="first", reader=readers[0])
    for birads, recall, name in ((5, False, "recall_follows_birads"), (1, True, "recall_follows_birads"),
                                 (3, False, "screening_birads"), (6, False, "screening_birads")):  # fmt: skip
        with pytest.raises(IntegrityError, match=name), transaction.atomic():
            BreastAssessment.objects.create(
                read=read, laterality="R", birads=birads, recall=recall, ai_agreement="not_shown"
            )
    # Added NOT VALID (migration 0009): rows submitted before the rules stay as given; new rows are checked.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, convalidated FROM pg_constraint WHERE conname IN "
            "('recall_follows_birads', 'screening_birads') ORDER BY conname"
        )
        assert cursor.fetchall() == [("recall_follows_birads", False), ("screening_birads", False)]


# ---------------------------------------------------------------------------------------------- agreement with AI


@pytest.mark.django_db
def test_agreement_follows_from_the_decision_and_the_validated_ais_call(
    technologist,
    readers,  # noqa: F811
    active_model,
):
    study = make_study(technologist)
    ai_says(study, active_model, positive="L")  # AI: right negative, left positive
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    # BI-RADS 1, no recall and "agree" while the AI called the left breast positive: refused.
    with pytest.raises(ApplicationError, match=r"Left breast: the AI's call is positive .* an override of the AI"):
        reading.read_submit(
            density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 1, ai_agreement="agree")]
        )
    with pytest.raises(ApplicationError, match="overrides the AI's positive call: a reason is required"):
        reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 1)])
    reading.read_submit(
        density="b",
        read_id=read.pk,
        user=ann,
        assessments=[one("R", 1, override_reason="ignored"), one("L", 2, override_reason="Stable benign calcs")],
    )
    stored = {a.laterality: a for a in BreastAssessment.objects.filter(read=read)}
    assert stored["R"].ai_agreement == "agree" and stored["R"].override_reason == ""
    assert stored["L"].ai_agreement == "override" and stored["L"].override_reason == "Stable benign calcs"
    assert AuditEvent.objects.get(action="ai.overridden").details["reason"] == "Stable benign calcs"


@pytest.mark.django_db
def test_an_override_needs_its_reason_on_every_breast(technologist, readers, active_model):  # noqa: F811
    study = make_study(technologist)
    ai_says(study, active_model, positive="L")
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    with pytest.raises(ApplicationError, match="Right breast: .*overrides the AI's negative call"):
        reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 4), one("L", 5)])
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 5)])
    stored = {a.laterality: a.ai_agreement for a in BreastAssessment.objects.filter(read=read)}
    assert stored == {"R": "agree", "L": "agree"}
    assert not AuditEvent.objects.filter(action="ai.overridden").exists()


@pytest.mark.django_db
def test_an_unvalidated_model_makes_no_call_to_agree_with(technologist, readers, active_model):  # noqa: F811
    study = make_study(technologist)
    ai_says(study, active_model, positive="L", validated=False)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    with pytest.raises(ApplicationError, match="not validated: its research score makes no call"):
        reading.read_submit(
            density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 1, ai_agreement="agree")]
        )
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 1)])
    assert set(BreastAssessment.objects.filter(read=read).values_list("ai_agreement", flat=True)) == {"not_applicable"}


@pytest.mark.django_db
def test_without_the_ai_the_agreement_is_not_shown(technologist, readers, active_model, settings):  # noqa: F811
    settings.READERS_SEE_AI = False
    study = make_study(technologist)
    ai_says(study, active_model, positive="L")
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    with pytest.raises(ApplicationError, match="no AI result was shown"):
        reading.read_submit(
            density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 1, ai_agreement="override")]
        )
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=[one("R", 1), one("L", 1)])
    assert set(BreastAssessment.objects.filter(read=read).values_list("ai_agreement", flat=True)) == {"not_shown"}


# ------------------------------------------------------------------------------------------------ page and API


@pytest.mark.django_db
def test_the_read_form_derives_recall_and_agreement_and_refuses_bi_rads_3(
    client,
    technologist,
    readers,  # noqa: F811
    active_model,
):
    study = make_study(technologist)
    ai_says(study, active_model, positive="L")
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    client.force_login(ann)
    page = client.get(f"/reading/reads/{read.pk}/").content.decode()
    # No recall or agreement to click: both are shown as they follow; the form script is a static file (CSP).
    assert 'name="R-recall"' not in page and 'name="L-ai_agreement"' not in page
    assert 'data-ai-call="positive"' in page and 'data-ai-call="negative"' in page
    assert "reading_form.js" in page and 'name="L-override_reason"' in page
    assert '<option value="3"' not in page and '<option value="0"' in page
    response = client.post(f"/reading/reads/{read.pk}/", {"R-birads": "3", "L-birads": "5", "density": "a"})
    assert response.status_code == 400
    assert "BI-RADS 3 (probably benign) is not a screening outcome" in response.content.decode()
    response = client.post(f"/reading/reads/{read.pk}/", {"R-birads": "1", "L-birads": "1", "density": "a"})
    body = response.content.decode()
    assert response.status_code == 400 and "overrides the AI&#x27;s positive call: a reason is required" in body
    assert "Override the AI: give your reason" in body  # the derived agreement, shown without the script
    ok = {"R-birads": "1", "L-birads": "1", "L-override_reason": "Skin fold", "density": "a"}
    assert client.post(f"/reading/reads/{read.pk}/", ok).status_code == 302
    assert BreastAssessment.objects.get(read=read, laterality="L").ai_agreement == "override"


@pytest.mark.django_db
def test_the_api_answers_400_json_for_contradictions(technologist, readers, active_model):  # noqa: F811
    study = make_study(technologist)
    ai_says(study, active_model, positive="L")
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    api = api_client_for(ann)
    url = f"/api/reads/{read.pk}/submit/"
    cases = [
        ([{"laterality": "R", "birads": 5, "recall": False}, {"laterality": "L", "birads": 5}], "BI-RADS 5 means"),
        ([{"laterality": "R", "birads": 3}, {"laterality": "L", "birads": 5}], "not a screening outcome"),
        ([{"laterality": "R", "birads": 1}, {"laterality": "L", "birads": 1, "ai_agreement": "agree"}], "override"),
        ([{"laterality": "R", "birads": 1}, {"laterality": "L", "birads": 1}], "a reason is required"),
    ]
    for assessments, message in cases:
        response = api.post(url, {"assessments": assessments, "density": "a"}, format="json")
        assert response.status_code == 400 and message in response.json()["detail"], response.json()
    response = api.post(url, {"assessments": [{"laterality": "R", "birads": 1}, {"laterality": "L", "birads": 4}],
                              "density": "a"}, format="json")  # fmt: skip
    assert response.status_code == 200
    assert {a["laterality"]: (a["recall"], a["ai_agreement"]) for a in response.json()["assessments"]} == {
        "R": (False, "agree"),
        "L": (True, "agree"),
    }


@pytest.mark.django_db(transaction=True)
def test_migration_0009_keeps_old_contradicting_reads_and_checks_new_ones(technologist, readers):  # noqa: F811
    """A read submitted before the rules (BI-RADS 3, or a recall that contradicts its BI-RADS) does not stop the
    migration: the checks are added NOT VALID, old rows stay as given, new rows are checked."""
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("cases", "0008_viewer_pixels_and_ai_reveal")], [("cases", "0009_screening_rules")]
    study = make_study(technologist, tag="909")
    read = claims.read_claim(study_id=study.pk, user=readers[0])
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO cases_breastassessment (read_id, laterality, birads, recall, ai_agreement, "
                "override_reason) VALUES (%s, 'R', 3, false, 'not_shown', ''), (%s, 'L', 5, false, 'not_shown', '')",
                [read.pk, read.pk],
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    try:
        old = {a.laterality: (a.birads, a.recall) for a in BreastAssessment.objects.filter(read=read)}
        assert old == {"R": (3, False), "L": (5, False)}  # kept as given
        with pytest.raises(IntegrityError, match="recall_follows_birads"), transaction.atomic():
            BreastAssessment.objects.filter(read=read, laterality="L").update(override_reason="edited")
        BreastAssessment.objects.filter(read=read).delete()
    finally:
        # Back to the latest schema: later migrations (columns among them) must be there for the tests that follow.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
