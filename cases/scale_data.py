"""A screening site's worth of rows, built fast, for the page benchmark (manage.py benchmark_pages) and for tests
that need more cases than building studies through uploads allows.

Rows only: no files behind the images (list pages and the performance figures never open them). The mix follows a
screening programme: most studies final after double reading (a few after arbitration), some awaiting their first
or second read, a few still uploading; two rounds per woman; per-image AI results of one model version; outcomes
for every recalled study and a share of the others, with about 1 % of studies with outcomes malignant. Every row is
written with bulk_create in batches: 10,000 studies take seconds to minutes, not hours.

Not for a real database: the benchmark calls it only inside its own throwaway database (benchmark_sandbox).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_events_append
from cases.models import BreastAssessment, Image, Outcome, Patient, Read, Study
from cases.studies.services import highest_probability
from inference.models import InferenceJob, ModelVersion, Prediction

BATCH = 5000
VIEWS = (("R", "CC"), ("R", "MLO"), ("L", "CC"), ("L", "MLO"))


@dataclass(frozen=True)
class Mix:
    """Shares of studies in each state (the rest is final after concordant double reading)."""

    uploaded: float = 0.02
    first_in_progress: float = 0.01  # claimed by the first reader, not yet submitted
    awaiting_first: float = 0.05
    awaiting_second: float = 0.05
    arbitration: float = 0.01
    arbitrated: float = 0.02  # final after arbitration
    recall: float = 0.08  # a reader recalls
    outcome_share: float = 0.3  # of final studies not recalled, the share with a follow-up outcome
    malignant_among_recalled: float = 0.12
    # States in turn instead of drawn (tests that need every queue filled): names as in _STATUS.
    pattern: tuple[str, ...] = ()


@dataclass(frozen=True)
class Built:
    studies: int
    rows: int
    seconds: float


def _id(n: int, tag: str) -> str:
    return hashlib.sha256(f"{tag}-{n}".encode()).hexdigest()


def build_site(
    n_studies: int,
    *,
    technologist,
    readers: list,
    lead,
    model_version: ModelVersion,
    seed: int = 0,
    mix: Mix = Mix(),
    audit_events_per_study: int = 3,
    start: int = 0,
) -> Built:
    """Writes `n_studies` studies with their rows; `start` numbers them after an earlier call's."""
    started = timezone.now()
    rng = random.Random(seed + start)
    now = timezone.now()
    rows = 0
    for offset in range(0, n_studies, BATCH):
        count = min(BATCH, n_studies - offset)
        with transaction.atomic():
            rows += _batch(rng, start + offset, count, technologist, readers, lead, model_version, mix, now)
            rows += _audit(start + offset, count, technologist, audit_events_per_study, now)
    return Built(n_studies, rows, (timezone.now() - started).total_seconds())


def _batch(rng, first, count, technologist, readers, lead, version, mix, now) -> int:
    patients = Patient.objects.bulk_create(
        [Patient(patient_id=f"SCALE-{first + i}", name=f"Woman {first + i}") for i in range(0, count, 2)]
    )
    states, studies = [], []
    for i in range(count):
        state = mix.pattern[(first + i) % len(mix.pattern)] if mix.pattern else _state(rng.random(), mix)
        recalled = state in ("arbitration", "arbitrated") or rng.random() < mix.recall
        states.append((state, recalled))
        studies.append(
            Study(
                patient=patients[i // 2],
                accession_number=f"ACC{first + i:08d}",
                study_instance_uid=f"2.25.{first + i}",
                study_date=(now - timedelta(days=(count - i) % 730)).date(),
                status=_STATUS[state],
                final_recall=(state == "arbitrated" or recalled) if _STATUS[state] == Study.Status.FINAL else None,
                finalised_at=now if _STATUS[state] == Study.Status.FINAL else None,
                created_by=technologist,
            )
        )
    studies = Study.objects.bulk_create(studies, batch_size=BATCH)
    images = Image.objects.bulk_create(
        [
            Image(
                study=study,
                original_filename=f"{side}_{view}.dcm",
                original=f"scale/{_id(study.pk * 4 + k, 'o')}",
                sha256=_id(study.pk * 4 + k, "img"),
                size_bytes=18_000_000,
                source_format="dicom",
                preview=f"scale/{study.pk}-{k}.png",
                laterality=side,
                view=view,
                rows=4096,
                columns=3328,
                bits_stored=12,
                photometric_interpretation="MONOCHROME2",
                modality="MG",
                uploaded_by=technologist,
                sop_class_uid="1.2.840.10008.5.1.4.1.1.1.2",
                transfer_syntax_uid="1.2.840.10008.1.2.5",
                dicom_study_instance_uid=study.study_instance_uid,
                series_instance_uid=f"{study.study_instance_uid}.{k}",
                sop_instance_uid=f"{study.study_instance_uid}.{k}.1",
            )
            for study in studies
            for k, (side, view) in enumerate(VIEWS)
        ],
        batch_size=BATCH,
    )
    image_states = [state for state, _ in states for _ in VIEWS]
    scored = [img for img, state in zip(images, image_states, strict=True) if state != "uploaded"]
    jobs = InferenceJob.objects.bulk_create(
        [InferenceJob(image=img, model_version=version, status=InferenceJob.Status.SUCCEEDED) for img in scored],
        batch_size=BATCH,
    )
    predictions = []
    for job in jobs:
        p = rng.betavariate(1, 12)
        predictions.append(
            Prediction(
                job=job,
                image=job.image,
                model_version=version,
                probability=p,
                raw_probability=p,
                threshold=version.threshold,
                label="malignant" if p >= version.threshold else "benign",
                heatmap="",
                overlay="",
                input_sha256=_id(job.image_id, "in"),
            )  # fmt: skip
        )
    Prediction.objects.bulk_create(predictions, batch_size=BATCH)
    # bulk_create sends no post_save: the studies' AI suspicion as the receivers would have kept it.
    Study.objects.filter(pk__in=[study.pk for study in studies]).update(ai_suspicion=Subquery(highest_probability()))

    reads, assessments, outcomes = [], [], []
    for i, (study, (state, recalled)) in enumerate(zip(studies, states, strict=True), start=first):
        first_reader = readers[i % len(readers)]
        second_reader = readers[(i + 1) % len(readers)]
        if state == "first_in_progress":
            reads.append(
                Read(study=study, kind=Read.Kind.FIRST, reader=first_reader, ai_reveal=Read.AiReveal.ON_REQUEST)
            )
        kinds = {
            "awaiting_first": [],
            "awaiting_second": [(Read.Kind.FIRST, first_reader, recalled)],
            "arbitration": [(Read.Kind.FIRST, first_reader, True), (Read.Kind.SECOND, second_reader, False)],
            "arbitrated": [
                (Read.Kind.FIRST, first_reader, True),
                (Read.Kind.SECOND, second_reader, False),
                (Read.Kind.ARBITRATION, lead, True),
            ],
            "final": [(Read.Kind.FIRST, first_reader, recalled), (Read.Kind.SECOND, second_reader, recalled)],
        }.get(state, [])
        for kind, reader, recall in kinds:
            reads.append(
                Read(
                    study=study,
                    kind=kind,
                    reader=reader,
                    status=Read.Status.SUBMITTED,
                    recall=recall,
                    ai_reveal=Read.AiReveal.ON_REQUEST,
                    submitted_at=now,
                )  # fmt: skip
            )
        if _STATUS[state] == Study.Status.FINAL and (recalled or rng.random() < mix.outcome_share):
            malignant = recalled and rng.random() < mix.malignant_among_recalled
            for side in "RL":
                truth = Outcome.Truth.MALIGNANT if malignant and side == "R" else (
                    Outcome.Truth.BENIGN if recalled else Outcome.Truth.NORMAL
                )  # fmt: skip
                outcomes.append(Outcome(study=study, laterality=side, truth=truth, recorded_by=lead))
    reads = Read.objects.bulk_create(reads, batch_size=BATCH)
    for read in reads:
        if read.status != Read.Status.SUBMITTED:
            continue
        for side in "RL":
            recall = bool(read.recall) and side == "R"
            assessments.append(
                BreastAssessment(
                    read=read,
                    laterality=side,
                    birads=4 if recall else 1,
                    recall=recall,
                    ai_agreement=BreastAssessment.Agreement.NOT_SHOWN,
                )  # fmt: skip
            )
    BreastAssessment.objects.bulk_create(assessments, batch_size=BATCH)
    Outcome.objects.bulk_create(outcomes, batch_size=BATCH)
    return len(patients) + len(studies) + len(images) + 2 * len(jobs) + len(reads) + len(assessments) + len(outcomes)


_STATUS = {
    "uploaded": Study.Status.PROCESSING,
    "first_in_progress": Study.Status.AWAITING_READS,
    "awaiting_first": Study.Status.AWAITING_READS,
    "awaiting_second": Study.Status.AWAITING_READS,
    "arbitration": Study.Status.ARBITRATION,
    "arbitrated": Study.Status.FINAL,
    "final": Study.Status.FINAL,
}


def _state(draw: float, mix: Mix) -> str:
    for state in ("uploaded", "first_in_progress", "awaiting_first", "awaiting_second", "arbitration", "arbitrated"):
        share = getattr(mix, state)
        if draw < share:
            return state
        draw -= share
    return "final"


def _audit(first, count, actor, per_study, now) -> int:
    """Audit rows as the services would leave them (upload, reads, decisions), hash-chained onto the trail, so the
    audit list and verify_audit see a valid trail."""
    if not per_study:
        return 0
    events = [
        AuditEvent(
            created_at=now,
            actor_id=actor.pk,
            actor_username=actor.get_username(),
            actor_role=actor.role,
            action=("images.uploaded", "read.submitted", "outcome.recorded")[k % 3],
            object_type="study",
            object_id=str(first + i),
            study_id=None,
            details={"scale": True},
        )
        for i in range(count)
        for k in range(per_study)
    ]
    audit_events_append(events)
    return len(events)
