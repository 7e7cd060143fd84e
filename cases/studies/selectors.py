"""Reads of clinical data. Each takes the requesting user and returns only what that user may see."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from accounts.roles import Capability, role_can
from cases.ai_visibility import ai_access
from cases.models import Image, Study
from core import storage
from core.models import OutboxMessage
from inference.models import InferenceJob, Prediction


def _require(user, capability: Capability) -> None:
    if not role_can(user, capability):
        raise PermissionDenied(f"Your role does not allow this ({capability}).")


def study_list(*, user) -> QuerySet[Study]:
    _require(user, Capability.STUDY_VIEW)
    # The image count as a correlated subquery, not a join with GROUP BY: the paginator's COUNT then leaves it out
    # (a bare COUNT over studies) and a page computes it for its 25 rows only.
    images = Image.objects.filter(study=OuterRef("pk")).order_by().values("study").annotate(n=Count("pk")).values("n")
    return (
        Study.objects.select_related("patient", "created_by")
        .annotate(image_count=Coalesce(Subquery(images), 0))
        .order_by("-created_at", "-pk")
    )


def _images_with_results() -> Prefetch:
    jobs = InferenceJob.objects.select_related("model_version").order_by("-created_at")
    predictions = Prediction.objects.select_related("model_version").order_by("-created_at")
    return Prefetch(
        "images",
        queryset=Image.objects.prefetch_related(
            Prefetch("jobs", queryset=jobs), Prefetch("predictions", queryset=predictions)
        ),
    )


def study_get(*, user, pk: int) -> Study:
    _require(user, Capability.STUDY_VIEW)
    study = (
        Study.objects.select_related("patient", "created_by")
        .prefetch_related(_images_with_results())
        .filter(pk=pk)
        .first()
    )
    if study is None:
        raise Http404("No such study.")
    return study


def image_get(*, user, pk: int) -> Image:
    _require(user, Capability.STUDY_VIEW)
    image = (
        Image.objects.select_related("study__patient")
        .prefetch_related(
            Prefetch("jobs", queryset=InferenceJob.objects.select_related("model_version").order_by("-created_at")),
            Prefetch(
                "predictions", queryset=Prediction.objects.select_related("model_version").order_by("-created_at")
            ),
        )
        .filter(pk=pk)
        .first()
    )
    if image is None:
        raise Http404("No such image.")
    return image


def study_prior(*, user, study: Study) -> Study | None:
    """The woman's most recent earlier study that has images (for comparison), or None. Earlier by study date when
    both have one, else by when they came in; images (with their jobs) prefetched like study_get."""
    _require(user, Capability.STUDY_VIEW)

    def when(other: Study) -> tuple:
        return (other.study_date or other.created_at.date(), other.created_at)

    candidates = (
        Study.objects.filter(patient_id=study.patient_id, images__isnull=False)
        .exclude(pk=study.pk)
        .distinct()
        .prefetch_related(_images_with_results())
    )
    earlier = [other for other in candidates if when(other) < when(study)]
    return max(earlier, key=when, default=None)


def image_current_job(image: Image) -> InferenceJob | None:
    """The most recent analysis of the image (uses the prefetched jobs when present)."""
    jobs = list(image.jobs.all())
    return jobs[0] if jobs else None


def image_current_prediction(image: Image, *, user) -> Prediction | None:
    """The prediction of the current job, or None when there is none or the user may not see this study's AI
    (cases.ai_visibility: their role, a read given without the AI, a first impression still to record)."""
    if not ai_access(user=user, study=image.study).shown:
        return None
    job = image_current_job(image)
    if job is None:
        return None
    for prediction in image.predictions.all():
        if prediction.job_id == job.pk:
            return prediction
    return None


def image_file_name(*, user, image: Image, kind: str) -> str:
    """The storage name of one of an image's files, after checking the user may see it."""
    if kind in ("original", "preview"):
        return image.original if kind == "original" else image.preview
    if kind == "pixels":  # the reading viewer's full-resolution pixels (cases.studies.pixels makes missing ones)
        return image.viewer_pixels or storage.viewer_pixels_name(image.sha256)
    if kind in ("heatmap", "overlay"):
        _require(user, Capability.PREDICTION_VIEW)
        prediction = image_current_prediction(image, user=user)
        if prediction is None:
            raise Http404("This image has no heatmap yet.")
        if not prediction.has_heatmap:
            raise Http404("This model gives no heatmap.")
        return prediction.heatmap if kind == "heatmap" else prediction.overlay
    raise Http404("Unknown file kind.")


def breast_summary(study: Study, *, user) -> list[dict]:
    """Per breast: its images and the most suspicious prediction among them (max over views).

    Max, not mean: a lesion often shows clearly in one view only, and a screening triage must not dilute it.
    """
    summary = []
    for side, label in (("R", "Right"), ("L", "Left")):
        images = [image for image in study.images.all() if image.laterality == side]
        if not images:
            continue
        predictions = [p for p in (image_current_prediction(i, user=user) for i in images) if p is not None]
        worst = max(predictions, key=lambda p: p.probability, default=None)
        summary.append(
            {
                "laterality": side,
                "label": label,
                "views": sorted({image.view for image in images}),
                "image_count": len(images),
                "analysed": len(predictions),
                "prediction": worst,  # the breast's most suspicious view (with its model and its validation)
            }
        )
    return summary


def analysis_stalled(study: Study) -> str:
    """A sentence for the study page when the study's analyses are not progressing (no live worker, or jobs that
    never reached the broker), else ''. Uses the prefetched jobs of study_get()."""
    from django.utils import timezone

    from core.workers import workers_alive

    jobs = [image_current_job(image) for image in study.images.all()]
    waiting = [
        j for j in jobs if j is not None and j.status in (InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING)
    ]
    if not waiting:
        return ""
    if not workers_alive():
        return (
            f"No analysis worker is running: {len(waiting)} image(s) wait for analysis, which will start by itself "
            "when a worker is back. Tell your administrator if this lasts."
        )
    unsent = OutboxMessage.objects.filter(
        subject=f"study:{study.pk}",
        status=OutboxMessage.Status.PENDING,
        send_failures__gt=0,
        send_after__lt=timezone.now() - timezone.timedelta(seconds=10),
    ).count()
    if unsent:
        return (
            f"The job queue (broker) could not be reached: {unsent} step(s) of this study (analyses, results) will be "
            "sent as soon as it answers again. Tell your administrator if this lasts."
        )
    return ""
