"""The AI result objects in the REST API: what a study's objects are (made, failed with the reason, still to
come), their deliveries, a download, and retries."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability, role_can
from cases.dicom.delivery import dicom_delivery_retry
from cases.dicom.pages import dicom_result_file_response
from cases.dicom.results import dicom_result_retry
from cases.dicom.selectors import dicom_result_get, study_expected_results
from cases.models import DicomDelivery, DicomResultObject
from cases.studies.selectors import study_get


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = DicomDelivery
        fields = ["id", "destination", "status", "attempts", "last_error", "next_attempt_at", "delivered_at"]


class DicomResultSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)
    file_url = serializers.SerializerMethodField()
    predecessor_sop_instance_uid = serializers.CharField(
        source="predecessor.sop_instance_uid", allow_null=True, default=None, read_only=True
    )

    class Meta:
        model = DicomResultObject
        fields = ["id", "kind", "status", "error_message", "image", "version", "is_current",
                  "predecessor_sop_instance_uid", "sop_class_uid", "sop_instance_uid", "series_instance_uid",
                  "study_instance_uid", "size_bytes", "created_at", "updated_at", "file_url", "deliveries"]  # fmt: skip

    def get_file_url(self, obj) -> str | None:
        if not obj.is_built:
            return None
        return self.context["request"].build_absolute_uri(f"/api/dicom-results/{obj.pk}/file/")


class ExpectedResultSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=DicomResultObject.Kind.choices)
    of = serializers.CharField(source="what", help_text="The image ('Right CC') or the whole study (with version).")
    state = serializers.ChoiceField(
        choices=["made", "failed", "being_made", "waiting"],
        help_text="made; failed (the reason in `explanation`, retry with POST /api/dicom-results/{id}/retry/); "
        "being_made; waiting (for the analysis, or for the study to be stable).",
    )
    explanation = serializers.CharField()
    object = DicomResultSerializer(source="obj", allow_null=True)
    older_versions = DicomResultSerializer(source="older", many=True)


class StudyDicomResultsApi(APIView):
    permission_classes = [HasCapability(Capability.PREDICTION_VIEW)]

    @extend_schema(responses=ExpectedResultSerializer(many=True))
    def get(self, request, pk: int):
        study = study_get(user=request.user, pk=pk)
        rows = study_expected_results(user=request.user, study=study)
        return Response(ExpectedResultSerializer(rows, many=True, context={"request": request}).data)


class DicomResultFileApi(APIView):
    permission_classes = [HasCapability(Capability.PREDICTION_VIEW)]

    def get(self, request, pk: int):
        return dicom_result_file_response(request, pk=pk)


class DicomResultRetryApi(APIView):
    """Make again an object that could not be made."""

    permission_classes = [HasCapability(Capability.STUDY_UPLOAD) | HasCapability(Capability.OPERATIONS_VIEW)]

    @extend_schema(request=None, responses=DicomResultSerializer)
    def post(self, request, pk: int):
        obj = _result_for_operations(request, pk)
        obj = dicom_result_retry(result_id=obj.pk, user=request.user)
        return Response(DicomResultSerializer(obj, context={"request": request}).data, status=202)


class DicomDeliveryRetryApi(APIView):
    """Send again a delivery that failed (or is stuck)."""

    permission_classes = [HasCapability(Capability.STUDY_UPLOAD) | HasCapability(Capability.OPERATIONS_VIEW)]

    @extend_schema(request=None, responses=DeliverySerializer)
    def post(self, request, pk: int):
        delivery = DicomDelivery.objects.select_related("result").filter(pk=pk).first()
        if delivery is None:
            raise Http404("No such delivery.")
        _result_for_operations(request, delivery.result_id)
        delivery = dicom_delivery_retry(delivery_id=delivery.pk, user=request.user)
        return Response(DeliverySerializer(delivery).data, status=202)


def _result_for_operations(request, pk: int) -> DicomResultObject:
    """IT (operations.view) may retry any result object without seeing the study; others only where they may see
    the study's AI results."""
    if role_can(request.user, Capability.OPERATIONS_VIEW):
        obj = DicomResultObject.objects.filter(pk=pk).first()
        if obj is None:
            raise Http404("No such result object.")
        return obj
    return dicom_result_get(user=request.user, pk=pk)
