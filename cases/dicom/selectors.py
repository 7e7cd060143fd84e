"""Reads of the AI result objects, their deliveries and what is still to come, for the study page, the API and the
operations page.

Nothing expected is ever just absent: for each DICOM image and each object the site makes, the study page shows the
object (with its deliveries), or why it is not there yet (waiting for the analysis, being made, waiting for the
study to be stable), or that it could not be made and why (with a retry)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from cases.ai_visibility import ai_access
from cases.dicom.results import chosen_kinds
from cases.models import DicomDelivery, DicomResultObject, Image, Study
from cases.studies.selectors import image_current_job, study_get
from core.models import OutboxMessage
from core.outbox import outbox_attention
from inference.models import InferenceJob

Kind, Status = DicomResultObject.Kind, DicomResultObject.Status


def dicom_results_visible(*, user, study: Study) -> bool:
    return ai_access(user=user, study=study).shown


def study_dicom_results(*, user, study: Study) -> list[DicomResultObject]:
    """The study's result objects with their deliveries, or [] when this user may not see AI results here."""
    if not dicom_results_visible(user=user, study=study):
        return []
    return list(study.dicom_results.select_related("image", "model_version").prefetch_related("deliveries"))


@dataclass
class ExpectedResult:
    """One object the site makes for this study, as the study page lists it."""

    kind: str
    what: str  # the image ("Right CC") or "whole study"
    state: str  # made | failed | being_made | waiting | not_made (nothing to make: a model without a heatmap)
    explanation: str = ""
    obj: DicomResultObject | None = None
    older: list[DicomResultObject] = field(default_factory=list)  # earlier versions of a per-study object

    @property
    def kind_display(self) -> str:
        return Kind(self.kind).label


def study_expected_results(*, user, study: Study) -> list[ExpectedResult]:
    """Every object the site makes for this study, made or not, with why not (see the module's docstring). `study`
    comes from study_get (its images with their jobs prefetched). [] when the user may not see AI results here."""
    dicom_images = [image for image in study.images.all() if image.source_format == Image.Format.DICOM]
    if not dicom_images or not dicom_results_visible(user=user, study=study):
        return []
    objects = list(study.dicom_results.select_related("image").prefetch_related("deliveries").order_by("version"))
    messages = {m.key: m for m in OutboxMessage.objects.filter(subject=f"study:{study.pk}")}
    rows = []
    for image in dicom_images:
        rows += _image_rows(image, objects, messages)
    rows += _study_rows(study, dicom_images, objects, messages)
    return rows


def _image_rows(image: Image, objects: list[DicomResultObject], messages: dict) -> list[ExpectedResult]:
    job = image_current_job(image)
    what = f"{image.get_laterality_display()} {image.view}"
    rows = []
    for kind in chosen_kinds(DicomResultObject.PER_IMAGE):
        # The object of the image's current analysis; else the newest one made for the image (an earlier model's).
        of_image = [o for o in objects if o.image_id == image.pk and o.kind == kind]
        current = [o for o in of_image if job is not None and o.model_version_id == job.model_version_id]
        made = (current or of_image or [None])[-1]
        prediction = (
            next((p for p in image.predictions.all() if p.job_id == job.pk), None)
            if job is not None and job.status == InferenceJob.Status.SUCCEEDED
            else None
        )
        if kind == Kind.OVERLAY_SC and prediction is not None and not prediction.has_heatmap and not current:
            rows.append(ExpectedResult(kind, what, "not_made", "Not made: this model gives no heatmap."))
        elif made is not None:
            rows.append(ExpectedResult(kind, what, _state(made), made.error_message, made))
        elif job is None or job.status != InferenceJob.Status.SUCCEEDED:
            failed = job is not None and job.status == InferenceJob.Status.FAILED
            why = (
                "Not made: the analysis of this image failed (the CAD SR reports it)."
                if failed
                else ("Made once the analysis has succeeded.")
            )
            rows.append(ExpectedResult(kind, what, "waiting", why))
        else:
            message = messages.get(f"dicom-image-results:{prediction.pk}") if prediction else None
            rows.append(_from_message(kind, what, message))
    return rows


def _study_rows(study: Study, images: list[Image], objects: list, messages: dict) -> list[ExpectedResult]:
    rows = []
    message = messages.get(f"dicom-study-results:{study.pk}")
    for kind in chosen_kinds(DicomResultObject.PER_STUDY):
        versions = [o for o in objects if o.image_id is None and o.kind == kind]
        current = versions[-1] if versions else None
        if current is not None:
            older = [o for o in versions[:-1] if o.is_built]
            rows.append(ExpectedResult(kind, f"whole study, version {current.version}", _state(current),
                                       current.error_message, current, older))  # fmt: skip
        else:
            rows.append(_from_message(kind, "whole study", message))
    if message is not None and message.status == OutboxMessage.Status.PENDING and rows:
        due = timezone.localtime(message.send_after)
        note = f"A new version is made once the study is stable (no new image until {due:%H:%M:%S}) and analysed."
        for row in rows:
            if row.state in ("made", "failed") or row.obj is not None:
                row.explanation = f"{row.explanation} {note}".strip()
    return rows


def _state(obj: DicomResultObject) -> str:
    return "made" if obj.is_built else "failed"


def _from_message(kind: str, what: str, message: OutboxMessage | None) -> ExpectedResult:
    if message is None:
        return ExpectedResult(kind, what, "waiting", "Made once the study's analyses have ended and it is stable.")
    if message.status == OutboxMessage.Status.FAILED:
        return ExpectedResult(kind, what, "failed", f"Could not be made: {message.last_error}")
    if message.status == OutboxMessage.Status.PENDING and message.send_after > timezone.now():
        due = timezone.localtime(message.send_after)
        return ExpectedResult(kind, what, "waiting", f"Made once the study is stable, from {due:%H:%M:%S}.")
    return ExpectedResult(kind, what, "being_made", message.last_error or "Being made.")


def dicom_result_get(*, user, pk: int) -> DicomResultObject:
    result = DicomResultObject.objects.select_related("study").filter(pk=pk).first()
    if result is None:
        raise Http404("No such result object.")
    study = study_get(user=user, pk=result.study_id)  # STUDY_VIEW
    if not dicom_results_visible(user=user, study=study):
        raise PermissionDenied("Your role does not allow this, or the AI result is withheld from your read.")
    return result


# --- For IT: what needs attention across the platform -----------------------------------------------------------


def results_needing_attention() -> dict:
    """Failed result objects (current ones), failed or overdue deliveries, and outbox messages failed or overdue."""
    now = timezone.now()
    return {
        "objects": list(
            DicomResultObject.objects.filter(status=Status.FAILED, is_current=True)
            .select_related("study", "image")
            .order_by("-updated_at")[:500]
        ),
        "deliveries": list(
            DicomDelivery.objects.filter(
                Q(status=DicomDelivery.Status.FAILED)
                | Q(status=DicomDelivery.Status.PENDING, attempts__gt=0)
                | Q(status=DicomDelivery.Status.PENDING, created_at__lt=now - timezone.timedelta(minutes=15))
            )
            .select_related("result__study")
            .order_by("-updated_at")[:500]
        ),
        "steps": list(outbox_attention()[:500]),
    }


def results_counts() -> dict[str, int]:
    """For /healthz: result objects and deliveries that failed, and work overdue."""
    from core.outbox import outbox_counts

    outbox = outbox_counts()
    return {
        "failed_objects": DicomResultObject.objects.filter(status=Status.FAILED, is_current=True).count(),
        "failed_deliveries": DicomDelivery.objects.filter(status=DicomDelivery.Status.FAILED).count(),
        "failed_steps": outbox["failed"],
        "overdue_steps": outbox["overdue"],
    }
