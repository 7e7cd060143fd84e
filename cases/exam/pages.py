"""The exam's pages (cases.exam): thin. Forms in, services and selectors called, templates out."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability, role_can
from cases.ai_visibility import ai_access
from cases.dicom.selectors import study_expected_results
from cases.exam.forms import AddImagesForm, StudyUploadForm
from cases.letters.selectors import study_result_panel
from cases.models import Study
from cases.reading.presenters import study_reading_context
from cases.reading.selectors import screening_outcome_visible_to
from cases.reading.viewer import image_viewer_config
from cases.screening.presenters import study_record_panel
from cases.studies import selectors
from cases.studies.ai_density import study_ai_density
from cases.studies.files import image_file_response
from cases.studies.ingestion import study_images_addable, study_upload
from cases.studies.uploads import incoming_files, request_too_large
from core.errors import ApplicationError
from core.request_limits import too_large_response
from inference.models import InferenceJob
from inference.serving.jobs import inference_job_retry
from inference.serving.outputs import prediction_output


def _report_outcomes(request, result) -> None:
    for outcome in result.outcomes:
        if outcome.status == "accepted":
            continue
        level = messages.WARNING if outcome.status == "duplicate" else messages.ERROR
        messages.add_message(request, level, f"{outcome.filename}: {outcome.reason}")
    if result.accepted:
        messages.success(request, f"{len(result.accepted)} image(s) stored; analysis has started.")
    if result.study is not None and result.study.status == Study.Status.HELD:
        messages.warning(
            request, f"The images are held for matching to an appointment: {result.study.held_reason} Nobody reads "
            "them until they are matched (Clinic, Held images).",
        )  # fmt: skip


@capability_required(Capability.STUDY_VIEW)
def study_list(request):
    page = Paginator(selectors.study_list(user=request.user), 25).get_page(request.GET.get("page"))
    return render(
        request, "cases/study_list.html", {"page": page, "can_upload": role_can(request.user, Capability.STUDY_UPLOAD)}
    )


@capability_required(Capability.STUDY_UPLOAD)
@require_http_methods(["GET", "POST"])
def study_create(request):
    if request_too_large(request):
        return too_large_response(request)
    form = StudyUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = study_upload(
                user=request.user,
                files=incoming_files(data["files"]),
                patient_id=data["patient_id"],
                patient_name=data["patient_name"],
                patient_birth_date=data["patient_birth_date"],
                accession_number=data["accession_number"],
                study_date=data["study_date"],
                description=data["description"],
                laterality=data["laterality"],
                view=data["view"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            _report_outcomes(request, result)
            if result.study is not None:
                return redirect("cases:study_detail", pk=result.study.pk)
            form.add_error(None, "No image was stored: see the reason for each file above.")
    return render(request, "cases/study_create.html", {"form": form}, status=400 if form.errors else 200)


def _images_refused(study) -> str:
    """Why images can no longer be added to this study (the ingestion service's rule), or "" while they can."""
    try:
        study_images_addable(study)
    except ApplicationError as exc:
        return exc.message
    return ""


@capability_required(Capability.STUDY_VIEW)
def study_detail(request, pk: int):
    return study_detail_render(request, selectors.study_get(user=request.user, pk=pk))


def study_detail_render(request, study, *, outcome_form=None):
    """The study's page; with a refused outcome form (cases.reading.views.outcome_create), that form again with its
    errors and HTTP 400."""
    can_upload = role_can(request.user, Capability.STUDY_UPLOAD)
    # Reads, marks, claim/assign and outcomes: only what reads_visible_to lets this user see.
    reading_context = study_reading_context(user=request.user, study=study)
    images = [
        {
            "image": image,
            "job": selectors.image_current_job(image),
            "prediction": selectors.image_current_prediction(image, user=request.user),
            "marks": reading_context["read_marks"].get(image.pk, []),
        }
        for image in study.images.all()
    ]
    context = {
        **reading_context,
        "study": study,
        "images": images,
        "breasts": selectors.breast_summary(study, user=request.user),
        "can_upload": can_upload,
        # Offered only while the study takes them: once reading started the form would only be refused.
        "images_refused": _images_refused(study) if can_upload else "",
        "can_see_ai": ai_access(user=request.user, study=study).shown,
        "add_form": AddImagesForm(),
        "stalled": selectors.analysis_stalled(study),
        "expected_results": study_expected_results(user=request.user, study=study),
        "screening_outcome": (outcome := screening_outcome_visible_to(user=request.user, study=study)),
        "result_panel": study_result_panel(user=request.user, study=study, screening_outcome=outcome),
        "ai_density": study_ai_density(user=request.user, study=study),
        "mammographer": study_record_panel(study),
    }
    if outcome_form is not None:
        context["outcome_form"] = outcome_form
    return render(request, "cases/study_detail.html", context, status=400 if outcome_form is not None else 200)


@capability_required(Capability.STUDY_VIEW)
def study_status(request, pk: int):
    """JSON polled by the study page so statuses update without a reload."""
    study = selectors.study_get(user=request.user, pk=pk)
    images = []
    for image in study.images.all():
        job = selectors.image_current_job(image)
        prediction = selectors.image_current_prediction(image, user=request.user)
        # What an AI output may say (inference.serving.outputs): a call only for a validated model.
        output = prediction_output(prediction) if prediction else None
        images.append(
            {
                "id": image.pk,
                "status": job.status if job else None,
                "status_display": job.get_status_display() if job else "Not analysed",
                "error": job.error_message if job and job.status != InferenceJob.Status.SUCCEEDED else "",
                "score": round(output.score, 4) if output else None,
                "score_kind": output.score_kind if output else None,
                "call": output.call if output else None,
            }
        )
    finished = all(i["status"] in ("succeeded", "failed") for i in images)
    return JsonResponse(
        {
            "study": study.pk,
            "status": study.get_status_display(),
            "finished": finished,
            "images": images,
            "stalled": selectors.analysis_stalled(study),
        }
    )


@capability_required(Capability.STUDY_UPLOAD)
@require_POST
def study_add_images(request, pk: int):
    if request_too_large(request):
        return too_large_response(request)
    study = selectors.study_get(user=request.user, pk=pk)
    form = AddImagesForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            result = study_upload(
                user=request.user,
                files=incoming_files(form.cleaned_data["files"]),
                study=study,
                patient_id=form.cleaned_data["patient_id"],
                laterality=form.cleaned_data["laterality"],
                view=form.cleaned_data["view"],
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            _report_outcomes(request, result)
    else:
        for error in form.errors.get("files", []):
            messages.error(request, error)
    return redirect("cases:study_detail", pk=study.pk)


@capability_required(Capability.STUDY_VIEW)
def image_detail(request, pk: int):
    image = selectors.image_get(user=request.user, pk=pk)
    prediction = selectors.image_current_prediction(image, user=request.user)
    context = {
        "image": image,
        "study": image.study,
        "job": selectors.image_current_job(image),
        "prediction": prediction,
        "viewer_config": image_viewer_config(
            image=image, show_ai=prediction is not None, with_heatmap=prediction is not None and prediction.has_heatmap
        ),
        "can_upload": role_can(request.user, Capability.STUDY_UPLOAD),
        "can_see_ai": ai_access(user=request.user, study=image.study).shown,
    }
    return render(request, "cases/image_detail.html", context)


@capability_required(Capability.STUDY_VIEW)
def image_file(request, pk: int, kind: str):
    return image_file_response(request, pk=pk, kind=kind)


@capability_required(Capability.STUDY_UPLOAD)
@require_POST
def job_retry(request, pk: int):
    job = get_object_or_404(InferenceJob.objects.select_related("image__study"), pk=pk)
    selectors.study_get(user=request.user, pk=job.image.study_id)  # access check
    try:
        inference_job_retry(job=job)
        messages.success(request, "The analysis was queued again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("cases:study_detail", pk=job.image.study_id)
