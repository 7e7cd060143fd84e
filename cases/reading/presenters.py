"""What the reading pages and the reading API show, ready for templates and serializers: worklist rows, reads
with their marks, the study page's reading panel. Blinding comes from cases.reading.worklist.reads_visible_to and
whether the AI may be shown from cases.studies.selectors; nothing here decides either."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Capability, role_can
from cases.models import Image, Read, Study
from cases.models.clinical import image_reading_key
from cases.reading import rules
from cases.reading import selectors as reading_selectors
from cases.reading.forms import BIRADS_NAMES, SIDE_NAMES, AssignForm, OutcomeForm
from cases.reading.worklist import (
    SORTS,
    Queue,
    WorklistQuery,
    first_queue_with_work,
    queue_ai_access,
    queues_for,
    reads_visible_to,
    worklist,
)
from cases.studies import selectors


def worklist_query_from(params, *, user, counts: dict[str, int] | None = None) -> WorklistQuery:
    """The page's and the API's query parameters. Without a queue (or with an unknown one), the first queue that
    has work (given the queue counts), so that nobody opens on an empty queue while work waits in another."""
    queues = queues_for(user)
    default = first_queue_with_work(user=user, counts=counts) if counts is not None else queues[0]
    queue = params.get("queue") or default
    if queue not in Queue.LABELS:
        queue = default
    sort = params.get("sort") if params.get("sort") in SORTS else "oldest"
    return WorklistQuery(queue=queue, sort=sort, search=(params.get("search") or "").strip()[:64])


def worklist_studies(*, user, query: WorklistQuery) -> QuerySet[Study]:
    """The queue's studies with what a row needs prefetched: the number of queries does not depend on the number
    of studies (counts, page, images, the user's own reads)."""
    if query.sort == "suspicion" and not queue_ai_access(user=user, queue=query.queue):
        query = replace(query, sort="oldest")
    studies = worklist(user=user, query=query)
    return studies.prefetch_related(
        Prefetch("images", queryset=Image.objects.only("id", "study_id", "laterality", "view")),
        Prefetch("reads", queryset=Read.objects.filter(reader=user, kind__in=Read.DOUBLE), to_attr="my_reads"),
    )


@dataclass(frozen=True)
class WorklistRow:
    study: Study
    image_count: int
    breasts: list[str]
    views: list[str]
    ai_suspicion: float | None  # None when there is none or it may not be shown
    my_read: Read | None  # only ever the user's own read
    action: str  # claim | continue | arbitrate | view
    action_url: str
    ready_at: datetime  # when it became ready for reading
    waited: str  # how long it has waited since: "40 min", "3 h", "2 d"
    reads_done: int  # submitted first and second reads
    reads_progress: str  # "1 of 2 reads done" while in double reading, else ""


def waited_words(delta: timedelta) -> str:
    """A waiting time as a reader scans it: "under 1 min", "40 min", "3 h" (under two days), "2 d"."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} d"


def worklist_rows(*, user, query: WorklistQuery, studies) -> list[WorklistRow]:
    shows_ai = queue_ai_access(user=user, queue=query.queue)
    now = timezone.now()
    rows = []
    for study in studies:
        images = sorted(study.images.all(), key=image_reading_key)
        my_read = study.my_reads[0] if study.my_reads else None
        unaided_draft = (
            my_read is not None and not my_read.is_submitted and (not my_read.ai_available or my_read.ai_locked)
        )
        if my_read is not None and not my_read.is_submitted:
            action, url = "continue", reverse("reading:read", args=[my_read.pk])
        elif query.queue == Queue.ARBITRATION:
            action, url = "arbitrate", reverse("reading:arbitrate", args=[study.pk])
        elif my_read is not None:
            action, url = "view", reverse("reading:read", args=[my_read.pk])
        elif query.queue in (Queue.AWAITING_FIRST, Queue.AWAITING_SECOND):
            action, url = "claim", reverse("reading:claim", args=[study.pk])
        else:
            action, url = "view", reverse("cases:study_detail", args=[study.pk])
        rows.append(
            WorklistRow(
                study=study,
                image_count=len(images),
                breasts=[SIDE_NAMES[s] for s in sorted({i.laterality for i in images}, reverse=True)],
                views=list(dict.fromkeys(f"{i.laterality} {i.view}" for i in images)),  # reading order, once each
                ai_suspicion=study.ai_suspicion if shows_ai and not unaided_draft else None,
                my_read=my_read,
                action=action,
                action_url=url,
                ready_at=study.ready_at,
                waited=waited_words(now - study.ready_at),
                reads_done=study.reads_done,
                reads_progress=(
                    f"{study.reads_done} of {len(Read.DOUBLE)} reads done" if study.status in Study.READABLE else ""
                ),
            )
        )
    return rows


def _mark_position(assessment, image: Image) -> dict:
    return {
        "left": 100 * assessment.mark_column / image.columns,
        "top": 100 * assessment.mark_row / image.rows,
    }


def read_display(read: Read, images: dict[int, Image]) -> dict:
    """A read (already filtered by reads_visible_to) ready for the templates."""
    assessments = []
    for a in sorted(read.assessments.all(), key=lambda a: a.laterality != "R"):  # right breast first
        image = images.get(a.mark_image_id) if a.mark_image_id else None
        assessments.append(
            {
                "assessment": a,
                "side": SIDE_NAMES[a.laterality],
                "birads_name": BIRADS_NAMES.get(a.birads, ""),
                "mark": (
                    f"{image.get_laterality_display()} {image.view}, row {a.mark_row:.0f}, column {a.mark_column:.0f}"
                    if image
                    else ""
                ),
            }
        )
    return {
        "read": read,
        "assessments": assessments,
        "technical_recalls": list(read.technical_recalls.all()),
        "addenda": list(read.addenda.all()),
    }


def image_items(*, user, study: Study, reads: list[Read], show_ai: bool) -> list[dict]:
    """The study's images with their AI result (when shown) and the marks of the given (visible) reads."""
    items = []
    for image in sorted(study.images.all(), key=image_reading_key):  # RCC, LCC, RMLO, LMLO
        marks = []
        for read in reads:
            for a in read.assessments.all():
                if a.mark_image_id == image.pk and a.mark_row is not None:
                    label = {"first": "1", "second": "2", "arbitration": "A"}[read.kind]
                    title = f"{read.get_kind_display()} ({read.reader}): BI-RADS {a.birads}"
                    marks.append({**_mark_position(a, image), "label": label, "title": title})
        items.append(
            {
                "image": image,
                "job": selectors.image_current_job(image),
                "prediction": selectors.image_current_prediction(image, user=user) if show_ai else None,
                "marks": marks,
            }
        )
    return items


def study_breasts(study: Study) -> list[str]:
    return sorted({image.laterality for image in study.images.all()}, reverse=True)  # right before left


def ai_calls(breast_summary: list[dict]) -> dict[str, str]:
    """Per breast, the AI's call as shown (cases.reading.rules): what the read form derives agreement from."""
    return {b["laterality"]: rules.ai_call(b) for b in breast_summary}


def study_reading_context(*, user, study: Study) -> dict:
    """What the study page shows of the reading workflow: visible reads and their marks, claim/assign forms and
    outcomes. Used by cases.exam.pages.study_detail."""
    reads = reads_visible_to(user=user, study=study)
    images = {image.pk: image for image in study.images.all()}
    context = {
        "reads": [read_display(read, images) for read in reads],
        "can_claim": reading_selectors.study_claimable_by(user=user, study=study),
        "outcomes": reading_selectors.outcomes_visible_to(user=user, study=study),
        "read_marks": {},
    }
    for item in image_items(user=user, study=study, reads=reads, show_ai=False):
        context["read_marks"][item["image"].pk] = item["marks"]
    if role_can(user, Capability.READ_ASSIGN) and study.status in Study.READABLE:
        slots = reading_selectors.study_read_slots(user=user, study=study)
        context["read_slots"] = slots
        context["assign_form"] = AssignForm(readers=reading_selectors.reader_choices(), slots=slots)
    if role_can(user, Capability.OUTCOME_RECORD) and study_breasts(study):
        context["outcome_form"] = OutcomeForm(breasts=study_breasts(study))
    if role_can(user, Capability.ARBITRATE) and study.status == Study.Status.ARBITRATION:
        context["can_arbitrate"] = not Read.objects.filter(study=study, kind__in=Read.DOUBLE, reader=user).exists()
    return context
