"""What a read says of the whole exam (issue 22, the reader's density; issue 23, technical recall and the
arbitration policy): breast density required in every screening read, views to be taken again with their reason,
the final reader density and the woman's statement (US MQSA wording), and the study's screening result."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from cases.models import Read, Study, TechnicalRecall
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.density import DENSE_STATEMENT, NOT_DENSE_STATEMENT, final_reader_density
from cases.reading.technical_recall import TechnicalRecallInput, screening_result, views_to_repeat
from core.errors import ApplicationError
from tests.conftest import api_client_for, make_user
from tests.test_reading import both, make_study


@pytest.fixture
def readers(db):
    return make_user("radiologist", "ann"), make_user("radiologist", "ben")


@pytest.fixture
def study(technologist):
    return make_study(technologist, tag="91")


def _read(study, reader, *, density="b", recall_right=False, birads=1, repeats=()):
    read = claims.read_claim(study_id=study.pk, user=reader)
    return reading.read_submit(read_id=read.pk, user=reader, assessments=both(recall_right, birads=birads),
                               density=density, technical_recalls=list(repeats))  # fmt: skip


@pytest.mark.django_db
def test_every_screening_read_records_the_breast_density(study, readers, client):
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    for missing in ("", None):
        with pytest.raises(ApplicationError, match="Give the breast density"):
            reading.read_submit(read_id=read.pk, user=ann, assessments=both(), density=missing)
    with pytest.raises(ApplicationError, match="must be a, b, c or d"):
        reading.read_submit(read_id=read.pk, user=ann, assessments=both(), density="e")
    api = api_client_for(ann)
    refused = api.post(f"/api/reads/{read.pk}/submit/", {"assessments": [
        {"laterality": "R", "birads": 1}, {"laterality": "L", "birads": 1}]}, format="json")  # fmt: skip
    assert refused.status_code == 400 and "density" in refused.json()
    client.force_login(ann)
    page = client.post(f"/reading/reads/{read.pk}/", {"R-birads": "1", "L-birads": "1"})
    assert page.status_code == 400 and "Give the breast density" in page.content.decode()
    assert Read.objects.get(pk=read.pk).status == "in_progress"
    done = client.post(f"/reading/reads/{read.pk}/", {"R-birads": "1", "L-birads": "1", "density": "c"})
    assert done.status_code == 302
    read.refresh_from_db()
    assert read.density == "c" and read.is_submitted
    assert AuditEvent.objects.get(action="read.submitted").details["density"] == "c"


@pytest.mark.django_db
def test_the_final_reader_density_and_the_womans_statement(technologist, readers, lead):
    ann, ben = readers
    agreed = make_study(technologist, tag="92")
    _read(agreed, ann, density="b")
    _read(agreed, ben, density="b")
    final = final_reader_density(Study.objects.get(pk=agreed.pk))
    assert (final.category, final.source, final.dense) == ("b", "both readers", False)
    assert final.statement == NOT_DENSE_STATEMENT and "Your breast tissue is not dense." in final.statement
    assert final.report_wording == "There are scattered areas of fibroglandular density."
    split = make_study(technologist, tag="93")
    _read(split, ann, density="b")
    _read(split, ben, density="c")  # one reader found them dense: the woman is told so
    final = final_reader_density(Study.objects.get(pk=split.pk))
    assert (final.category, final.source, final.statement) == ("c", "denser of the two reads", DENSE_STATEMENT)
    assert "In some people with dense tissue, other imaging tests" in final.statement
    arbitrated = make_study(technologist, tag="94")
    _read(arbitrated, ann, density="d", recall_right=True)
    _read(arbitrated, ben, density="b")
    assert Study.objects.get(pk=arbitrated.pk).status == Study.Status.ARBITRATION
    assert final_reader_density(Study.objects.get(pk=arbitrated.pk)) is None  # not decided yet
    reading.arbitration_submit(study_id=arbitrated.pk, user=lead, assessments=both(), density="a")
    final = final_reader_density(Study.objects.get(pk=arbitrated.pk))
    assert (final.category, final.source) == ("a", "arbitration")


@pytest.mark.django_db
def test_technical_recall_sends_the_woman_back_for_those_views_not_to_assessment(study, readers, client):
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    cases = [
        ([TechnicalRecallInput("R", "MLO", "motion")], "no such view"),
        ([TechnicalRecallInput("R", "CC", "")], "choose a reason"),
        ([TechnicalRecallInput("R", "CC", "other")], "describe the reason"),
        ([TechnicalRecallInput("R", "CC", "motion"), TechnicalRecallInput("R", "CC", "exposure")], "given twice"),
    ]
    for repeats, message in cases:
        with pytest.raises(ApplicationError, match=message):
            reading.read_submit(read_id=read.pk, user=ann, assessments=both(), density="b", technical_recalls=repeats)
    reading.read_submit(read_id=read.pk, user=ann, assessments=both(), density="b",
                        technical_recalls=[TechnicalRecallInput("R", "CC", "positioning")])  # fmt: skip
    _read(study, ben, repeats=[TechnicalRecallInput("L", "CC", "other", "Skin fold over the nipple")])
    study.refresh_from_db()
    # No reader recalls for assessment: the study is final, and its result is a technical recall of both views.
    assert study.status == Study.Status.FINAL and study.final_recall is False
    assert screening_result(study) == "technical_recall"
    assert [(t.laterality, t.view, t.reason) for t in views_to_repeat(study)] == [
        ("L", "CC", "other"), ("R", "CC", "positioning")]  # fmt: skip
    body = api_client_for(ann).get(f"/api/studies/{study.pk}/").json()
    outcome = body["screening_outcome"]
    assert outcome["result"] == "technical_recall" and len(outcome["views_to_repeat"]) == 2
    assert outcome["density"]["category"] == "b" and outcome["density"]["statement"] == NOT_DENSE_STATEMENT
    client.force_login(ann)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Technical recall: some views to be taken again" in page and "Skin fold over the nipple" in page
    assert "Your breast tissue is not dense." in page


@pytest.mark.django_db
def test_the_screening_outcome_is_for_readers_only_and_only_once_final(study, readers, technologist):
    ann, ben = readers
    _read(study, ann)
    api = api_client_for(ann)
    assert api.get(f"/api/studies/{study.pk}/").json()["screening_outcome"] is None  # not final
    _read(study, ben)
    assert api.get(f"/api/studies/{study.pk}/").json()["screening_outcome"]["result"] == "routine_recall"
    assert api_client_for(technologist).get(f"/api/studies/{study.pk}/").json()["screening_outcome"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policy", "second", "expected"),
    [
        ("discordant", {"recall_right": True}, Study.Status.FINAL),  # both recall: concordant
        ("every_recall", {"recall_right": True}, Study.Status.ARBITRATION),
        ("every_recall", {"birads": 2}, Study.Status.FINAL),
        ("every_non_normal", {"birads": 2}, Study.Status.ARBITRATION),  # BI-RADS 2 is not "normal"
        ("every_non_normal", {"repeats": [TechnicalRecallInput("R", "CC", "motion")]}, Study.Status.ARBITRATION),
        ("every_non_normal", {}, Study.Status.FINAL),
    ],
)
def test_the_sites_arbitration_policy_decides_which_double_reads_a_lead_arbitrates(
    technologist, readers, settings, policy, second, expected
):
    settings.ARBITRATION_POLICY = policy
    ann, ben = readers
    study = make_study(technologist, tag="95")
    first_recall = second.get("recall_right", False)
    _read(study, ann, recall_right=first_recall)
    _read(study, ben, **second)
    assert Study.objects.get(pk=study.pk).status == expected


@pytest.mark.django_db
def test_a_technical_recall_with_a_reason_other_than_other_needs_no_description(study, readers):
    ann, _ = readers
    _read(study, ann, repeats=[TechnicalRecallInput("L", "CC", "exposure")])
    assert TechnicalRecall.objects.get().detail == ""
