"""The AI result objects in the REST API: list a study's objects with their deliveries, download one."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability
from cases.dicom.pages import dicom_result_file_response
from cases.dicom.selectors import study_dicom_results
from cases.models import DicomDelivery, DicomResultObject
from cases.studies.selectors import study_get


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = DicomDelivery
        fields = ["id", "destination", "status", "attempts", "last_error", "next_attempt_at", "delivered_at"]


class DicomResultSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)
    file_url = serializers.SerializerMethodField()

    class Meta:
        model = DicomResultObject
        fields = ["id", "kind", "image", "sop_class_uid", "sop_instance_uid", "series_instance_uid",
                  "study_instance_uid", "size_bytes", "created_at", "file_url", "deliveries"]  # fmt: skip

    def get_file_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(f"/api/dicom-results/{obj.pk}/file/")


class StudyDicomResultsApi(APIView):
    permission_classes = [HasCapability(Capability.PREDICTION_VIEW)]

    def get(self, request, pk: int):
        study = study_get(user=request.user, pk=pk)
        results = study_dicom_results(user=request.user, study=study)
        return Response(DicomResultSerializer(results, many=True, context={"request": request}).data)


class DicomResultFileApi(APIView):
    permission_classes = [HasCapability(Capability.PREDICTION_VIEW)]

    def get(self, request, pk: int):
        return dicom_result_file_response(request, pk=pk)
