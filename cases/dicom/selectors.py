"""Reads of the AI result objects and their deliveries, for the study page and the API."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.roles import Capability, role_can
from cases.models import DicomResultObject, Study
from cases.studies.selectors import ai_withheld, study_get


def dicom_results_visible(*, user, study: Study) -> bool:
    return role_can(user, Capability.PREDICTION_VIEW) and not ai_withheld(user=user, study=study)


def study_dicom_results(*, user, study: Study) -> list[DicomResultObject]:
    """The study's result objects with their deliveries, or [] when this user may not see AI results here."""
    if not dicom_results_visible(user=user, study=study):
        return []
    return list(study.dicom_results.select_related("image", "model_version").prefetch_related("deliveries"))


def dicom_result_get(*, user, pk: int) -> DicomResultObject:
    result = DicomResultObject.objects.select_related("study").filter(pk=pk).first()
    if result is None:
        raise Http404("No such result object.")
    study = study_get(user=user, pk=result.study_id)  # STUDY_VIEW
    if not dicom_results_visible(user=user, study=study):
        raise PermissionDenied("Your role does not allow this, or the AI result is withheld from your read.")
    return result
