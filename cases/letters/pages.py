"""The result letters' pages: confirm a result (from the study page), the letter list with downloading and printing
many at once, making a letter again, and the site's wording. Thin: forms in, services and selectors, templates out."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability
from cases.letters import selectors, services
from cases.letters.forms import ConfirmResultForm, LetterFilterForm, LetterTemplateForm
from cases.models.letters import Letter, ScreeningResultConfirmation, ScreeningResultKind
from cases.studies import selectors as study_selectors
from core.errors import ApplicationError

PAGE_SIZE = 50
MAX_PRINT = 500  # one print run: a PDF of this many letters stays a few megabytes (the API's limit too)


def pdf_response(data: bytes, filename: str) -> HttpResponse:
    """A letter or a print run as a download, never cached (the pages and the API)."""
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@capability_required(Capability.LETTER_VIEW)
def letter_list(request):
    form = LetterFilterForm(request.GET or None)
    show, result = "to_print", ""
    if form.is_valid():
        show = form.cleaned_data["show"] or "to_print"
        result = form.cleaned_data["result"]
    letters = selectors.letters_list(show=show, result=result)
    page = Paginator(letters, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form if form.is_bound else LetterFilterForm(initial={"show": show}),
        "show": show,
        "show_label": selectors.SHOW.get(show, ""),
        "result": result,
        "result_label": ScreeningResultKind(result).label if result else "",
        "page": page,
        "to_print_count": selectors.letters_list(show="to_print").count(),
        "max_print": MAX_PRINT,
    }
    return render(request, "letters/list.html", context)


@capability_required(Capability.LETTER_VIEW)
def letter_download(request, pk: int):
    letter = get_object_or_404(Letter.objects.select_related("confirmation"), pk=pk)
    try:
        data = services.letter_downloaded(letter=letter, user=request.user)
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=409, content_type="text/plain; charset=utf-8")
    return pdf_response(data, f"{letter.reference}.pdf")


@capability_required(Capability.LETTER_VIEW)
@require_POST
def letters_print(request):
    """One PDF of the chosen letters (or of every letter still to print), which marks them printed."""
    if request.POST.get("all_to_print"):
        letters = list(selectors.letters_list(show="to_print").order_by("made_at", "pk")[:MAX_PRINT])
    else:
        try:
            ids = [int(value) for value in request.POST.getlist("letter")]
        except ValueError:
            ids = []
        if len(ids) > MAX_PRINT:
            messages.error(request, f"Print at most {MAX_PRINT} letters at once ({len(ids)} were chosen).")
            return redirect("letters:list")
        found = {letter.pk: letter for letter in Letter.objects.select_related("confirmation").filter(pk__in=ids)}
        letters = [found[i] for i in ids if i in found]
    try:
        data = services.letters_print(letters=letters, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("letters:list")
    return pdf_response(data, f"letters-{len(letters)}.pdf")


@capability_required(Capability.RESULT_CONFIRM)
@require_POST
def result_confirm(request, pk: int):
    study = study_selectors.study_get(user=request.user, pk=pk)
    form = ConfirmResultForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The result to confirm was missing from the form: open the study again.")
        return redirect("cases:study_detail", pk=study.pk)
    try:
        confirmation = services.result_confirm(
            study=study, seen_result=form.cleaned_data["seen_result"], user=request.user
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        letter = confirmation.letters.order_by("-pk").first()
        messages.success(
            request,
            f"Result confirmed: {confirmation.get_result_display()}. Letter {letter.reference} is ready to print.",
        )
    return redirect("cases:study_detail", pk=study.pk)


@capability_required(Capability.RESULT_CONFIRM)
@require_POST
def letter_remake(request, pk: int):
    """The letter made again with the site's current wording (after a correction); the earlier one is kept."""
    study = study_selectors.study_get(user=request.user, pk=pk)
    confirmation = get_object_or_404(ScreeningResultConfirmation, study=study)
    letter = services.letter_make(confirmation=confirmation, user=request.user)
    messages.success(request, f"Letter {letter.reference} was made with the current wording.")
    return redirect("cases:study_detail", pk=study.pk)


@capability_required(Capability.LETTER_TEMPLATE_EDIT)
def template_list(request):
    return render(
        request,
        "letters/templates.html",
        {"rows": selectors.letter_templates_current(), "placeholders": selectors.placeholders()},
    )


@capability_required(Capability.LETTER_TEMPLATE_EDIT)
@require_http_methods(["GET", "POST"])
def template_edit(request, result: str):
    if result not in ScreeningResultKind.values:
        raise Http404("No such result.")
    kind = ScreeningResultKind(result)
    current = services.letter_template_current(result)
    form = LetterTemplateForm(request.POST or None, initial={"subject": current.subject, "body": current.body})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                template = services.letter_template_save(
                    result=result, subject=form.cleaned_data["subject"], body=form.cleaned_data["body"],
                    user=request.user,
                )  # fmt: skip
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"{kind.label}: version {template.version} of the wording is in use.")
                return redirect("letters:templates")
        status = 400
    context = {
        "kind": kind,
        "current": current,
        "form": form,
        "versions": selectors.letter_template_versions(result),
        "placeholders": selectors.placeholders(),
    }
    return render(request, "letters/template_edit.html", context, status=status)
