"""The double-reading rules, at the service level."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from accounts.roles import Role
from audit.models import AuditEvent
from cases.models import Read, Study
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.services import AssessmentInput
from cases.reading.worklist import Queue, WorklistQuery, reads_visible_to, worklist
from cases.studies.ingestion import IncomingFile, study_upload
from core.errors import ApplicationError
from tests.conftest import make_user
from tests.dicom_factory import make_dicom


def make_study(user, *, tag: str = "1") -> Study:
    files = [
        IncomingFile.from_bytes(
            f"{side}_CC.dcm",
            make_dicom(sop_uid=f"2.{tag}.{i}", laterality=side, view="CC", patient_id=f"W{tag}"),
        )
        for i, side in enumerate("RL")
    ]
    study = study_upload(user=user, files=files).study
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    study.refresh_from_db()
    return study


def both(recall_right=False, recall_left=False, birads=1):
    return [
        AssessmentInput(laterality="R", birads=4 if recall_right else birads, recall=recall_right),
        AssessmentInput(laterality="L", birads=4 if recall_left else birads, recall=recall_left),
    ]


@pytest.fixture
def readers(db):
    return make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")


@pytest.mark.django_db
def test_concordant_reads_make_the_study_final(technologist, readers):
    study = make_study(technologist)
    ann, ben = readers
    first = claims.read_claim(study_id=study.pk, user=ann)
    second = claims.read_claim(study_id=study.pk, user=ben)
    assert (first.kind, second.kind) == ("first", "second")
    reading.read_submit(density="b", read_id=first.pk, user=ann, assessments=both())
    reading.read_submit(density="b", read_id=second.pk, user=ben, assessments=both())
    study.refresh_from_db()
    assert study.status == Study.Status.FINAL and study.final_recall is False


@pytest.mark.django_db
def test_discordant_reads_go_to_arbitration_by_a_third_lead(technologist, readers, lead):
    study = make_study(technologist)
    ann, ben = readers
    first = claims.read_claim(study_id=study.pk, user=ann)
    second = claims.read_claim(study_id=study.pk, user=ben)
    reading.read_submit(density="b", read_id=first.pk, user=ann, assessments=both(recall_left=True))
    reading.read_submit(
        density="b", read_id=second.pk, user=ben, assessments=both(recall_right=True)
    )  # both recall, other breast
    study.refresh_from_db()
    assert study.status == Study.Status.ARBITRATION
    with pytest.raises(PermissionDenied):
        reading.arbitration_submit(density="b", study_id=study.pk, user=ann, assessments=both())
    reading.arbitration_submit(density="b", study_id=study.pk, user=lead, assessments=both(recall_left=True))
    study.refresh_from_db()
    assert study.status == Study.Status.FINAL and study.final_recall is True
    with pytest.raises(ApplicationError):
        reading.arbitration_submit(density="b", study_id=study.pk, user=lead, assessments=both())


@pytest.mark.django_db
def test_one_person_never_gives_both_reads(technologist, readers, lead):
    study = make_study(technologist)
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    assert claims.read_claim(study_id=study.pk, user=ann).pk == read.pk  # resumes, no second read
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    with pytest.raises(ApplicationError, match="another radiologist"):
        claims.read_claim(study_id=study.pk, user=ann)
    with pytest.raises(ApplicationError, match="another radiologist"):
        claims.read_assign(study_id=study.pk, reader=ann, by=lead)
    # And the database itself refuses it.
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Read.objects.create(study=study, kind="second", reader=ann)


@pytest.mark.django_db
def test_a_submitted_read_is_immutable_and_corrected_by_addendum(technologist, readers):
    study = make_study(technologist)
    ann, ben = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    with pytest.raises(ApplicationError, match="addendum"):
        reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both(recall_left=True))
    with pytest.raises(PermissionDenied):  # someone else's record: 403, not a bad input
        reading.read_addendum_create(read_id=read.pk, user=ben, text="not mine")
    addendum = reading.read_addendum_create(read_id=read.pk, user=ann, text="Left: small cyst, benign.")
    assert addendum.read_id == read.pk
    assert AuditEvent.objects.filter(action="read.addendum").count() == 1


@pytest.mark.django_db
def test_overriding_the_ai_needs_a_reason_and_is_audited(technologist, readers, active_model):
    from tests.test_reading_pages import ai_says

    study = make_study(technologist)
    ai_says(study, active_model, positive="")  # a validated model, negative on both breasts
    ann, _ = readers
    read = claims.read_claim(study_id=study.pk, user=ann)
    no_reason = [AssessmentInput(laterality=s, birads=4) for s in "RL"]  # recall against a negative call: override
    with pytest.raises(ApplicationError, match="a reason is required"):
        reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=no_reason)
    good = [
        AssessmentInput(laterality="R", birads=1, recall=False, ai_agreement="agree"),
        AssessmentInput(laterality="L", birads=0, override_reason="Asymmetry, needs views"),
    ]
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=good)
    event = AuditEvent.objects.get(action="ai.overridden")
    assert event.details["reason"] == "Asymmetry, needs views" and event.actor_username == "ann"


@pytest.mark.django_db
def test_the_second_reader_cannot_see_the_first_read(technologist, readers, lead):
    study = make_study(technologist)
    ann, ben = readers
    first = claims.read_claim(study_id=study.pk, user=ann)
    reading.read_submit(density="b", read_id=first.pk, user=ann, assessments=both(recall_left=True))
    assert reads_visible_to(user=ben, study=study) == []
    assert reads_visible_to(user=lead, study=study) == []  # the lead might still take the second read
    second = claims.read_claim(study_id=study.pk, user=ben)
    assert [r.pk for r in reads_visible_to(user=ben, study=study)] == [second.pk]
    reading.read_submit(density="b", read_id=second.pk, user=ben, assessments=both())
    assert {r.pk for r in reads_visible_to(user=ben, study=study)} == {first.pk, second.pk}
    study.refresh_from_db()
    assert study.status == Study.Status.ARBITRATION
    assert {r.pk for r in reads_visible_to(user=lead, study=study)} == {first.pk, second.pk}


@pytest.mark.django_db
def test_worklist_queues_follow_the_reads(technologist, readers, lead):
    study = make_study(technologist)
    ann, ben = readers

    def ids(user, queue):
        return [s.pk for s in worklist(user=user, query=WorklistQuery(queue=queue))]

    assert ids(ann, Queue.AWAITING_FIRST) == [study.pk]
    read = claims.read_claim(study_id=study.pk, user=ann)
    assert ids(ann, Queue.IN_PROGRESS) == [study.pk] and ids(ben, Queue.AWAITING_FIRST) == []
    reading.read_submit(density="b", read_id=read.pk, user=ann, assessments=both())
    assert ids(ben, Queue.AWAITING_SECOND) == [study.pk]
    assert ids(ann, Queue.AWAITING_SECOND) == []  # never offered your own study's second read
    assert ids(ann, Queue.COMPLETED) == [study.pk]
    with pytest.raises(PermissionDenied):
        worklist(user=technologist, query=WorklistQuery())
    with pytest.raises(PermissionDenied):
        worklist(user=ann, query=WorklistQuery(queue=Queue.ARBITRATION))


@pytest.mark.django_db(transaction=True)
def test_two_readers_claiming_at_the_same_moment_cannot_both_get_the_first_read(technologist):
    study = make_study(technologist, tag="9")
    readers = [make_user(Role.RADIOLOGIST, f"r{i}") for i in range(4)]
    barrier = threading.Barrier(len(readers))
    results: dict[str, str] = {}

    def claim(user):
        try:
            barrier.wait()
            results[user.username] = claims.read_claim(study_id=study.pk, user=user).kind
        except ApplicationError as exc:
            results[user.username] = f"refused: {exc.message}"
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = sorted(v for v in results.values() if not v.startswith("refused"))
    assert kinds == ["first", "second"], results
    assert Read.objects.filter(study=study).count() == 2


@pytest.mark.django_db
def test_outcomes_are_recorded_by_leads_only_and_audited(technologist, readers, lead):
    study = make_study(technologist)
    ann, _ = readers
    with pytest.raises(PermissionDenied):
        reading.outcome_record(study_id=study.pk, laterality="L", truth="malignant", user=ann)
    reading.outcome_record(study_id=study.pk, laterality="L", truth="benign", user=lead)
    reading.outcome_record(study_id=study.pk, laterality="L", truth="malignant", user=lead, note="biopsy 2026-12-01")
    event = AuditEvent.objects.filter(action="outcome.recorded").last()
    assert event.details["previous"] == "benign" and event.details["truth"] == "malignant"
