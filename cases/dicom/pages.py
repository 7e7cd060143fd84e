"""The study page's DICOM results: download an object, try a delivery again."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability
from audit.services import audit_record
from cases.dicom.delivery import dicom_delivery_retry
from cases.dicom.results import dicom_result_retry
from cases.dicom.selectors import dicom_result_get
from cases.models import DicomDelivery, DicomResultObject
from cases.studies import selectors
from core import storage
from core.errors import ApplicationError


def dicom_result_file_response(request, *, pk: int) -> FileResponse:
    """Shared by the page and the API: access check, audit row, the DICOM file as an attachment."""
    result = dicom_result_get(user=request.user, pk=pk)
    if not result.is_built:
        raise Http404("This result object could not be made: there is no file.")
    try:
        handle = storage.open_file(result.file)  # FileResponse closes it
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    audit_record(
        action="dicom.result_downloaded", actor=request.user, obj=result, study_id=result.study_id,
        details={"kind": result.kind, "sop_instance_uid": result.sop_instance_uid},
    )  # fmt: skip
    response = FileResponse(
        handle, as_attachment=True, filename=f"{result.kind}-{result.sop_instance_uid}.dcm",
        content_type="application/dicom",
    )  # fmt: skip
    response["Cache-Control"] = "private, no-store"
    return response


@capability_required(Capability.PREDICTION_VIEW)
def dicom_result_file(request, pk: int):
    return dicom_result_file_response(request, pk=pk)


@require_POST
@capability_required(Capability.STUDY_UPLOAD)
def delivery_retry(request, pk: int):
    delivery = get_object_or_404(DicomDelivery.objects.select_related("result"), pk=pk)
    selectors.study_get(user=request.user, pk=delivery.result.study_id)  # access check
    try:
        dicom_delivery_retry(delivery_id=delivery.pk, user=request.user)
        messages.success(request, "The result will be sent again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(f"/studies/{delivery.result.study_id}/#dicom-results")


@require_POST
@capability_required(Capability.STUDY_UPLOAD)
def result_retry(request, pk: int):
    result = get_object_or_404(DicomResultObject, pk=pk)
    selectors.study_get(user=request.user, pk=result.study_id)  # access check
    try:
        dicom_result_retry(result_id=result.pk, user=request.user)
        messages.success(request, "The result object will be made again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(f"/studies/{result.study_id}/#dicom-results")
