"""Reading pages: the worklist, claiming and assigning, the reading page, arbitration and outcomes.

Thin: the rules live in the services (cases.reading); which reads a user may see comes only from
cases.worklist.reads_visible_to, and whether the AI may be shown from cases.selectors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability, role_can
from cases import reading, selectors
from cases.errors import ApplicationError
from cases.models import Image, Read, Study
from cases.reading_forms import (
    BIRADS_NAMES,
    SIDE_NAMES,
    AddendumForm,
    AssignForm,
    CommentsForm,
    OutcomeForm,
    breast_forms,
)
from cases.worklist import SORTS, Queue, WorklistQuery, queues_for, reads_visible_to, worklist, worklist_counts

DOUBLE = (Read.Kind.FIRST, Read.Kind.SECOND)
PAGE_SIZE = 25

# ---------------------------------------------------------------------------------------------------- worklist


def queue_shows_ai(*, user, queue: str) -> bool:
    """Whether AI suspicion may be shown (and sorted on) in a queue. With READERS_SEE_AI off, the queues whose
    studies the user may still read (or is reading) must not reveal the AI, not even through the sort order."""
    if not role_can(user, Capability.PREDICTION_VIEW):
        return False
    return settings.READERS_SEE_AI or queue in (Queue.ARBITRATION, Queue.COMPLETED)


def worklist_query_from(params, *, user) -> WorklistQuery:
    """The page's and the API's query parameters; an unknown queue or sort falls back to the default."""
    queues = queues_for(user)
    queue = params.get("queue") or queues[0]
    if queue not in Queue.LABELS:
        queue = queues[0]
    sort = params.get("sort") if params.get("sort") in SORTS else "oldest"
    return WorklistQuery(queue=queue, sort=sort, search=(params.get("search") or "").strip()[:64])


def worklist_studies(*, user, query: WorklistQuery) -> QuerySet[Study]:
    """The queue's studies with what a row needs prefetched: the number of queries does not depend on the number
    of studies (counts, page, images, the user's own reads)."""
    if query.sort == "suspicion" and not queue_shows_ai(user=user, queue=query.queue):
        query = replace(query, sort="oldest")
    studies = worklist(user=user, query=query)
    return studies.prefetch_related(
        Prefetch("images", queryset=Image.objects.only("id", "study_id", "laterality", "view")),
        Prefetch("reads", queryset=Read.objects.filter(reader=user, kind__in=DOUBLE), to_attr="my_reads"),
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


def worklist_rows(*, user, query: WorklistQuery, studies) -> list[WorklistRow]:
    shows_ai = queue_shows_ai(user=user, queue=query.queue)
    rows = []
    for study in studies:
        images = list(study.images.all())
        my_read = study.my_reads[0] if study.my_reads else None
        unaided_draft = my_read is not None and not my_read.is_submitted and not my_read.ai_shown
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
                views=sorted({f"{i.laterality} {i.view}" for i in images}, reverse=True),
                ai_suspicion=study.ai_suspicion if shows_ai and not unaided_draft else None,
                my_read=my_read,
                action=action,
                action_url=url,
            )
        )
    return rows


@capability_required(Capability.STUDY_READ)
def worklist_page(request):
    user = request.user
    query = worklist_query_from(request.GET, user=user)
    page = Paginator(worklist_studies(user=user, query=query), PAGE_SIZE).get_page(request.GET.get("page"))
    counts = worklist_counts(user=user)
    shows_ai = queue_shows_ai(user=user, queue=query.queue)
    context = {
        "query": urlencode({"queue": query.queue, "sort": query.sort, "search": query.search}),
        "worklist_query": query,
        "tabs": [
            {
                "queue": q,
                "label": Queue.LABELS[q],
                "count": counts[q],
                "url": "?" + urlencode({"queue": q, "sort": query.sort, "search": query.search}),
            }
            for q in queues_for(user)
        ],
        "sorts": SORTS if shows_ai else {"oldest": SORTS["oldest"]},
        "sort_withheld": query.sort == "suspicion" and not shows_ai,
        "shows_ai": shows_ai,
        "page": page,
        "rows": worklist_rows(user=user, query=query, studies=page.object_list),
    }
    return render(request, "reading/worklist.html", context)


# ------------------------------------------------------------------------------------------ claiming, assigning


@capability_required(Capability.STUDY_READ)
@require_POST
def claim(request, pk: int):
    try:
        read = reading.read_claim(study_id=pk, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reading:worklist")
    return redirect("reading:read", pk=read.pk)


@capability_required(Capability.READ_ASSIGN)
@require_POST
def assign(request, pk: int):
    study = selectors.study_get(user=request.user, pk=pk)
    slots = selectors.study_read_slots(user=request.user, study=study)
    form = AssignForm(request.POST, readers=selectors.reader_choices(), slots=slots)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("cases:study_detail", pk=study.pk)
    reader = form.cleaned_data["reader"]
    try:
        read = reading.read_assign(study_id=study.pk, reader=reader, by=request.user, read_id=form.cleaned_data["read"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The {read.get_kind_display().lower()} is now assigned to {reader}.")
    return redirect("cases:study_detail", pk=study.pk)


# ------------------------------------------------------------------------------------------------ presentation


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
    return {"read": read, "assessments": assessments, "addenda": list(read.addenda.all())}


def image_items(*, user, study: Study, reads: list[Read], show_ai: bool) -> list[dict]:
    """The study's images with their AI result (when shown) and the marks of the given (visible) reads."""
    items = []
    # Right breast first, as on a reading screen (the right breast on the viewer's left).
    for image in sorted(study.images.all(), key=lambda i: (i.laterality != "R", i.view, i.pk)):
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


def _breasts(study: Study) -> list[str]:
    return sorted({image.laterality for image in study.images.all()}, reverse=True)  # right before left


def _ai_breasts(breast_summary: list[dict]) -> set[str]:
    return {b["laterality"] for b in breast_summary if b["probability"] is not None}


def study_reading_context(request, study: Study) -> dict:
    """What the study page shows of the reading workflow: visible reads and their marks, claim/assign forms and
    outcomes. Used by cases.views.study_detail."""
    user = request.user
    reads = reads_visible_to(user=user, study=study)
    images = {image.pk: image for image in study.images.all()}
    context = {
        "reads": [read_display(read, images) for read in reads],
        "can_claim": selectors.study_claimable_by(user=user, study=study),
        "outcomes": selectors.outcomes_visible_to(user=user, study=study),
        "read_marks": {},
    }
    for item in image_items(user=user, study=study, reads=reads, show_ai=False):
        context["read_marks"][item["image"].pk] = item["marks"]
    if role_can(user, Capability.READ_ASSIGN) and study.status in reading.READABLE:
        slots = selectors.study_read_slots(user=user, study=study)
        context["read_slots"] = slots
        context["assign_form"] = AssignForm(readers=selectors.reader_choices(), slots=slots)
    if role_can(user, Capability.OUTCOME_RECORD) and _breasts(study):
        context["outcome_form"] = OutcomeForm(breasts=_breasts(study))
    if role_can(user, Capability.ARBITRATE) and study.status == Study.Status.ARBITRATION:
        context["can_arbitrate"] = not Read.objects.filter(study=study, kind__in=DOUBLE, reader=user).exists()
    return context


# ------------------------------------------------------------------------------------------------ reading page


def _own_read(request, pk: int) -> tuple[Read, Study]:
    """The user's own read (through reads_visible_to, like every read shown) and its study; 403 for others."""
    study_id = Read.objects.filter(pk=pk).values_list("study_id", flat=True).first()
    if study_id is None:
        raise Http404("No such read.")
    study = selectors.study_get(user=request.user, pk=study_id)
    read = next(
        (r for r in reads_visible_to(user=request.user, study=study) if r.pk == pk and r.reader_id == request.user.pk),
        None,
    )
    if read is None:
        raise PermissionDenied("This read belongs to another radiologist.")
    return read, study


@capability_required(Capability.STUDY_READ)
@require_http_methods(["GET", "POST"])
def read_page(request, pk: int):
    read, study = _own_read(request, pk)
    show_ai = read.ai_shown and role_can(request.user, Capability.PREDICTION_VIEW)
    breast_summary = selectors.breast_summary(study, user=request.user) if show_ai else []
    editable = not read.is_submitted and read.kind in DOUBLE
    forms = breast_forms(
        breasts=_breasts(study),
        ai_breasts=_ai_breasts(breast_summary),
        data=request.POST if request.method == "POST" else None,
    )
    comments_form = CommentsForm(request.POST if request.method == "POST" else None)
    error = ""
    if request.method == "POST":
        if not editable:
            messages.error(request, "This read was already submitted; add an addendum to correct it.")
            return redirect("reading:read", pk=read.pk)
        if all(form.is_valid() for form in forms) and comments_form.is_valid():
            try:
                reading.read_submit(
                    read_id=read.pk,
                    user=request.user,
                    assessments=[form.to_input() for form in forms],
                    comments=comments_form.cleaned_data["comments"],
                )
            except ApplicationError as exc:
                error = exc.message
            else:
                messages.success(request, f"Your {read.get_kind_display().lower()} is submitted.")
                return redirect("reading:read", pk=read.pk)
        else:
            error = "Please correct the fields marked below."
    images = {image.pk: image for image in study.images.all()}
    context = {
        "read": read,
        "study": study,
        "editable": editable,
        "show_ai": show_ai,
        "breast_summary": breast_summary,
        "images": image_items(user=request.user, study=study, reads=[] if editable else [read], show_ai=show_ai),
        "forms": forms,
        "comments_form": comments_form,
        "error": error,
        "display": read_display(read, images),
        "addendum_form": AddendumForm(),
    }
    return render(request, "reading/read.html", context, status=400 if error else 200)


@capability_required(Capability.STUDY_READ)
@require_POST
def addendum_create(request, pk: int):
    read, _ = _own_read(request, pk)
    form = AddendumForm(request.POST)
    if form.is_valid():
        try:
            reading.read_addendum_create(read_id=read.pk, user=request.user, text=form.cleaned_data["text"])
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Addendum added.")
    else:
        messages.error(request, "The addendum is empty.")
    return redirect("reading:read", pk=read.pk)


# ------------------------------------------------------------------------------------------------- arbitration


@capability_required(Capability.ARBITRATE)
@require_http_methods(["GET", "POST"])
def arbitrate_page(request, pk: int):
    study = selectors.study_get(user=request.user, pk=pk)
    if study.status != Study.Status.ARBITRATION:
        messages.info(request, f"This study is not awaiting arbitration ({study.get_status_display()}).")
        return redirect("cases:study_detail", pk=study.pk)
    reads = reads_visible_to(user=request.user, study=study)
    if any(r.reader_id == request.user.pk for r in reads if r.kind in DOUBLE):
        raise PermissionDenied("Arbitration must come from a lead radiologist who gave neither read.")
    double = sorted((r for r in reads if r.kind in DOUBLE and r.is_submitted), key=lambda r: r.kind)
    breast_summary = selectors.breast_summary(study, user=request.user)
    forms = breast_forms(
        breasts=_breasts(study),
        ai_breasts=_ai_breasts(breast_summary),
        data=request.POST if request.method == "POST" else None,
    )
    comments_form = CommentsForm(request.POST if request.method == "POST" else None)
    error = ""
    if request.method == "POST":
        if all(form.is_valid() for form in forms) and comments_form.is_valid():
            try:
                reading.arbitration_submit(
                    study_id=study.pk,
                    user=request.user,
                    assessments=[form.to_input() for form in forms],
                    comments=comments_form.cleaned_data["comments"],
                )
            except ApplicationError as exc:
                error = exc.message
            else:
                messages.success(request, "Arbitration submitted; the study is final.")
                return redirect("cases:study_detail", pk=study.pk)
        else:
            error = "Please correct the fields marked below."
    images = {image.pk: image for image in study.images.all()}
    context = {
        "study": study,
        "reads": [read_display(read, images) for read in double],
        "breast_summary": breast_summary,
        "show_ai": role_can(request.user, Capability.PREDICTION_VIEW),
        "images": image_items(user=request.user, study=study, reads=double, show_ai=True),
        "forms": forms,
        "comments_form": comments_form,
        "error": error,
    }
    return render(request, "reading/arbitrate.html", context, status=400 if error else 200)


# ---------------------------------------------------------------------------------------------------- outcomes


@capability_required(Capability.OUTCOME_RECORD)
@require_POST
def outcome_create(request, pk: int):
    study = selectors.study_get(user=request.user, pk=pk)
    form = OutcomeForm(request.POST, breasts=_breasts(study))
    if form.is_valid():
        try:
            outcome = reading.outcome_record(
                study_id=study.pk,
                laterality=form.cleaned_data["laterality"],
                truth=form.cleaned_data["truth"],
                note=form.cleaned_data["note"],
                user=request.user,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Outcome recorded: {outcome}.")
    else:
        messages.error(request, "Choose a breast and an outcome.")
    return redirect("cases:study_detail", pk=study.pk)
