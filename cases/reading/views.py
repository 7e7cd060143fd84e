"""Reading pages: the worklist, claiming and assigning, the reading page, arbitration and outcomes.

Thin: the rules live in the services (cases.reading.services); which reads a user may see comes only from
cases.reading.worklist.reads_visible_to, and whether the AI may be shown from cases.studies.selectors.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability, role_can
from cases.ai_visibility import ai_access
from cases.exam.pages import study_detail_render
from cases.models import Read, Study
from cases.reading import claims, sessions
from cases.reading import selectors as reading_selectors
from cases.reading import services as reading
from cases.reading.forms import AddendumForm, AssignForm, CommentsForm, OutcomeForm, breast_forms, exam_form
from cases.reading.presenters import (
    ai_calls,
    read_display,
    study_breasts,
    worklist_query_from,
    worklist_rows,
    worklist_studies,
)
from cases.reading.statistics import NO_SITE, may_see_statistics, reading_statistics, statistics_tables
from cases.reading.viewer import arbitration_navigation, read_navigation, viewer_config
from cases.reading.worklist import (
    SORTS,
    WORK_QUEUES,
    Queue,
    queue_ai_access,
    queues_for,
    reads_visible_to,
    worklist_counts,
)
from cases.screening.presenters import study_record_panel
from cases.studies import selectors
from cases.studies.ai_density import study_ai_density
from core.errors import ApplicationError
from core.times import local_time_text
from inference.models import ModelVersion
from inference.monitoring.stop_rules import open_alerts

PAGE_SIZE = 25

# ---------------------------------------------------------------------------------------------------- worklist


def _sorts(*, shows_ai: bool, model) -> dict[str, str]:
    """The sort choices; sorting by an unvalidated model's score is offered only as what it is."""
    if not shows_ai:
        return {"oldest": SORTS["oldest"]}
    if model is not None and not model.validation.validated:
        return {**SORTS, "suspicion": "Highest research score first (AI not validated)"}
    return SORTS


@capability_required(Capability.STUDY_READ)
def worklist_page(request):
    user = request.user
    counts = worklist_counts(user=user)
    query = worklist_query_from(request.GET, user=user, counts=counts)
    page = Paginator(worklist_studies(user=user, query=query), PAGE_SIZE).get_page(request.GET.get("page"))
    shows_ai = queue_ai_access(user=user, queue=query.queue)
    ai_model = ModelVersion.objects.malignancy().active().first()
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
        # Every queue that holds work for this user, the most pressing first, with its count.
        "waiting": [(Queue.LABELS[q], counts[q]) for q in WORK_QUEUES if counts.get(q)],
        "sorts": _sorts(shows_ai=shows_ai, model=ai_model),
        "ai_model": ai_model if shows_ai else None,
        "sort_withheld": query.sort == "suspicion" and not shows_ai,
        "shows_ai": shows_ai,
        "page": page,
        "rows": worklist_rows(user=user, query=query, studies=page.object_list),
        "reading_session": sessions.session_open_get(user=user),
        "sees_statistics": may_see_statistics(user),
        "model_alerts": list(open_alerts()) if role_can(user, Capability.MODEL_MONITOR) else [],
    }
    return render(request, "reading/worklist.html", context)


# ---------------------------------------------------------------------------------------------- reading sessions


@capability_required(Capability.STUDY_READ)
@require_POST
def session_start(request):
    """Start a reading session and open the first case of the reader's queue."""
    try:
        sessions.session_start(user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reading:worklist")
    return _to_next_case(request, started=True)


@capability_required(Capability.STUDY_READ)
@require_POST
def session_end(request):
    try:
        session = sessions.session_end(user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        n = session.reads.filter(status=Read.Status.SUBMITTED).count()
        messages.success(request, f"Reading session ended: {n} read{'s' if n != 1 else ''} given in it.")
    return redirect("reading:worklist")


def _to_next_case(request, *, started: bool = False):
    """The next case of the reader's queue (cases.reading.sessions.next_case), or the worklist when it is empty."""
    read = sessions.next_case(user=request.user)
    if read is None:
        messages.info(
            request, "Your queue is empty: no case waits for you." + (" The session stays open." if started else "")
        )
        return redirect("reading:worklist")
    return redirect("reading:read", pk=read.pk)


@require_GET
def statistics_page(request):
    """Reading statistics (cases.reading.statistics): reading.statistics shows one's own row and the sites,
    reading.statistics_all every reader's."""
    if not may_see_statistics(request.user):
        raise PermissionDenied("Your role does not allow this (reading.statistics).")
    report = reading_statistics(user=request.user)
    context = {"report": report, "tables": statistics_tables(report), "no_site": NO_SITE}
    return render(request, "reading/statistics.html", context)


# ------------------------------------------------------------------------------------------ claiming, assigning


@capability_required(Capability.STUDY_READ)
@require_POST
def claim(request, pk: int):
    try:
        read = claims.read_claim(study_id=pk, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reading:worklist")
    return redirect("reading:read", pk=read.pk)


@capability_required(Capability.READ_ASSIGN)
@require_POST
def assign(request, pk: int):
    study = selectors.study_get(user=request.user, pk=pk)
    slots = reading_selectors.study_read_slots(user=request.user, study=study)
    form = AssignForm(request.POST, readers=reading_selectors.reader_choices(), slots=slots)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("cases:study_detail", pk=study.pk)
    reader = form.cleaned_data["reader"]
    try:
        read = claims.read_assign(study_id=study.pk, reader=reader, by=request.user, read_id=form.cleaned_data["read"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The {read.get_kind_display().lower()} is now assigned to {reader}.")
    return redirect("cases:study_detail", pk=study.pk)


@capability_required(Capability.STUDY_READ)
@require_POST
def release(request, pk: int):
    """Give up a read in progress (its reader, or a lead: cases.reading.claims.read_release); 403 for others."""
    read = Read.objects.filter(pk=pk).select_related("study").first()
    if read is None:
        raise Http404("No such read.")
    own = read.reader_id == request.user.pk
    try:
        claims.read_release(read_id=read.pk, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reading:read", pk=read.pk) if own else redirect("cases:study_detail", pk=read.study_id)
    messages.success(
        request, f"The {read.get_kind_display().lower()} is released: another radiologist can now claim it."
    )
    return redirect("reading:worklist") if own else redirect("cases:study_detail", pk=read.study_id)


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


def _first_impression_forms(read: Read, forms: list) -> list:
    """After a recorded first impression the form starts from it (the reader refines it once the AI is shown)."""
    if read.first_impression and forms and not forms[0].is_bound:
        for form in forms:
            given = read.first_impression.get(form.laterality) or {}
            if given:
                form.initial = {"birads": given["birads"]}
    return forms


def _draft_forms(read: Read, forms: list, comments_form) -> None:
    """A reopened read starts from its saved draft (over any first impression: the draft is the later word)."""
    draft = read.draft or {}
    if not draft or not forms or forms[0].is_bound:
        return
    for form in forms:
        given = {
            name: draft[f"{form.laterality}-{name}"]
            for name in claims.DRAFT_BREAST_FIELDS
            if f"{form.laterality}-{name}" in draft
        }
        form.initial = {**form.initial, **given}
    if "comments" in draft:
        comments_form.initial = {"comments": draft["comments"]}


@capability_required(Capability.STUDY_READ)
@require_POST
def read_draft(request, pk: int):
    """The read form's script saves the unsubmitted form here as the reader works (CSRF-protected POST)."""
    read, _ = _own_read(request, pk)
    draft = {key: value for key, value in request.POST.items() if key not in ("csrfmiddlewaretoken", "action")}
    try:
        read = claims.read_draft_save(read_id=read.pk, user=request.user, draft=draft)
    except ApplicationError as exc:
        return JsonResponse({"detail": exc.message}, status=400)
    # The time as the page writes every other time (the site's zone, 24-hour clock), not as the browser's locale would.
    return JsonResponse(
        {
            "saved_at": read.draft_saved_at.isoformat(),
            "saved_at_text": local_time_text(read.draft_saved_at, seconds=True),
        }
    )


@capability_required(Capability.STUDY_READ)
@require_POST
def read_ai_revealed(request, pk: int):
    """The viewer's AI switch posts here when it puts the AI on screen (CSRF-protected, the read's own reader only):
    the read records when its reader first saw the AI (cases.reading.services.read_ai_reveal_record)."""
    read, _ = _own_read(request, pk)
    try:
        read = reading.read_ai_reveal_record(read_id=read.pk, user=request.user, source="switch")
    except ApplicationError as exc:
        return JsonResponse({"detail": exc.message}, status=400)
    return JsonResponse({"ai_first_shown_at": read.ai_first_shown_at.isoformat()})


@capability_required(Capability.STUDY_READ)
@require_http_methods(["GET", "POST"])
def read_page(request, pk: int):
    read, study = _own_read(request, pk)
    editable = not read.is_submitted and read.kind in Read.DOUBLE
    access = ai_access(user=request.user, study=study, read=read)  # cases.ai_visibility: the one rule
    ai_locked, show_ai = access.locked, access.shown
    ai_open = show_ai and read.ai_reveal == Read.AiReveal.OPEN
    if ai_open and editable and read.ai_first_shown_at is None and request.method == "GET":
        # AI_REVEAL open: this page shows the AI as it opens; that is the reader's first sight of it.
        read = reading.read_ai_reveal_record(read_id=read.pk, user=request.user, source="opened")
    breast_summary = selectors.breast_summary(study, user=request.user) if show_ai else []
    ai_density = study_ai_density(user=request.user, study=study) if show_ai else None
    impression = request.method == "POST" and request.POST.get("action") == "impression"
    forms = breast_forms(
        breasts=study_breasts(study),
        ai_calls={} if impression else ai_calls(breast_summary),
        data=request.POST if request.method == "POST" else None,
    )
    comments_form = CommentsForm(request.POST if request.method == "POST" else None)
    exam = exam_form(study, request.POST if request.method == "POST" and not impression else None)
    error = ""
    if request.method == "POST":
        if not editable:
            messages.error(request, "This read was already submitted; add an addendum to correct it.")
            return redirect("reading:read", pk=read.pk)
        exam_valid = impression or exam.is_valid()
        if all(form.is_valid() for form in forms) and comments_form.is_valid() and exam_valid:
            try:
                if impression:
                    reading.read_first_impression_record(
                        read_id=read.pk, user=request.user, impressions=[form.to_input() for form in forms]
                    )
                else:
                    reading.read_submit(
                        read_id=read.pk,
                        user=request.user,
                        assessments=[form.to_input() for form in forms],
                        density=exam.cleaned_data["density"],
                        technical_recalls=exam.technical_recalls(),
                        comments=comments_form.cleaned_data["comments"],
                    )
            except ApplicationError as exc:
                error = exc.message
            else:
                done = (
                    "Your first impression is recorded; the AI can now be shown."
                    if impression
                    else (f"Your {read.get_kind_display().lower()} is submitted.")
                )
                messages.success(request, done)
                if not impression and sessions.session_open_get(user=request.user) is not None:
                    return _to_next_case(request)  # a reading session goes on to the next case
                return redirect("reading:read", pk=read.pk)
        else:
            error = "Please correct the fields marked below."
    images = {image.pk: image for image in study.images.all()}
    forms = _first_impression_forms(read, forms)
    if editable:
        _draft_forms(read, forms, comments_form)
    context = {
        "read": read,
        "study": study,
        "editable": editable,
        "show_ai": show_ai,
        "ai_locked": ai_locked,
        "ai_open": ai_open,
        "breast_summary": breast_summary,
        "ai_density": ai_density,
        "viewer_config": viewer_config(
            user=request.user,
            study=study,
            reads=[] if editable else [read],
            markable=editable,
            show_ai=show_ai,
            ai_locked=ai_locked,
            ai_open=ai_open,
            navigation=read_navigation(user=request.user, read=read),
            # While the read is in progress the AI switch tells the server when the AI first comes on screen.
            ai_reveal_url=reverse("reading:read_ai_revealed", args=[read.pk]) if editable and show_ai else "",
            csrf_token=get_token(request),
        ),
        "forms": forms,
        "comments_form": comments_form,
        "exam_form": exam,
        "error": error,
        "display": read_display(read, images),
        "addendum_form": AddendumForm(),
        # What the mammographer recorded (symptoms, implants, an incomplete exam...): it changes how they read.
        "mammographer": study_record_panel(study),
        "session_progress": _session_progress(request.user, read),
    }
    return render(request, "reading/read.html", context, status=400 if error else 200)


def _session_progress(user, read: Read):
    """Shows "case n of m" while the reader has a reading session open (cases.reading.sessions)."""
    session = sessions.session_open_get(user=user)
    return sessions.session_progress(session=session, user=user, current=read) if session is not None else None


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
    if any(r.reader_id == request.user.pk for r in reads if r.kind in Read.DOUBLE):
        raise PermissionDenied("Arbitration must come from a lead radiologist who gave neither read.")
    double = sorted((r for r in reads if r.kind in Read.DOUBLE and r.is_submitted), key=lambda r: r.kind)
    breast_summary = selectors.breast_summary(study, user=request.user)
    forms = breast_forms(
        breasts=study_breasts(study),
        ai_calls=ai_calls(breast_summary),
        data=request.POST if request.method == "POST" else None,
    )
    comments_form = CommentsForm(request.POST if request.method == "POST" else None)
    exam = exam_form(study, request.POST if request.method == "POST" else None)
    error = ""
    if request.method == "POST":
        if all(form.is_valid() for form in forms) and comments_form.is_valid() and exam.is_valid():
            try:
                reading.arbitration_submit(
                    study_id=study.pk,
                    user=request.user,
                    assessments=[form.to_input() for form in forms],
                    density=exam.cleaned_data["density"],
                    technical_recalls=exam.technical_recalls(),
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
    show_ai = ai_access(user=request.user, study=study).shown
    context = {
        "study": study,
        "reads": [read_display(read, images) for read in double],
        "breast_summary": breast_summary,
        "ai_density": study_ai_density(user=request.user, study=study) if show_ai else None,
        "show_ai": show_ai,
        "ai_open": settings.AI_REVEAL == "open",
        "viewer_config": viewer_config(
            user=request.user,
            study=study,
            reads=double,  # the arbitrator sees both readers' marks on the same layout
            markable=True,
            show_ai=show_ai,
            ai_open=settings.AI_REVEAL == "open",
            navigation=arbitration_navigation(study=study),
        ),
        "forms": forms,
        "comments_form": comments_form,
        "exam_form": exam,
        "error": error,
        "mammographer": study_record_panel(study),
    }
    return render(request, "reading/arbitrate.html", context, status=400 if error else 200)


# ---------------------------------------------------------------------------------------------------- outcomes


@capability_required(Capability.OUTCOME_RECORD)
@require_POST
def outcome_create(request, pk: int):
    study = selectors.study_get(user=request.user, pk=pk)
    form = OutcomeForm(request.POST, breasts=study_breasts(study))
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
        return study_detail_render(request, study, outcome_form=form)  # the study's page: the form, its errors
    return redirect("cases:study_detail", pk=study.pk)
