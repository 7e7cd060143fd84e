"""The AI inventory in the API: GET /api/models/ (filters kind, status), GET /api/models/{id}/ (with its manifest,
conformance report and status history), POST /api/models/{id}/status/ (administrators)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability
from inference.inventory.selectors import inventory_record, model_inventory, model_version_get
from inference.lifecycle import model_version_status_change
from inference.models import ModelKind, ModelStatus


class StatusChangeRecordSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    from_status = serializers.CharField(source="from", allow_null=True)
    to = serializers.CharField()
    by = serializers.CharField(help_text="The person's username, or the command that made the change.")
    reason = serializers.CharField()
    acceptance_report_id = serializers.IntegerField(
        allow_null=True, help_text="The signed-off local acceptance report an acceptance rests on."
    )


class ModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ModelKind.choices)
    version = serializers.CharField()
    vendor = serializers.CharField()
    runtime = serializers.CharField(help_text="keras, savedmodel, onnx, or weights (a density port).")
    status = serializers.ChoiceField(choices=ModelStatus.choices)
    is_active = serializers.BooleanField(help_text="The one active model of its kind.")
    validated = serializers.BooleanField()
    validation = serializers.CharField(help_text="The model's validation in one sentence for people.")
    published_validation = serializers.CharField(help_text="The vendor's published figures, as declared on import.")
    licence = serializers.CharField()
    intended_use = serializers.CharField()
    operating_point = serializers.FloatField(allow_null=True)
    file_sha256 = serializers.CharField()
    imported_by = serializers.CharField()
    imported_via = serializers.CharField()
    imported_at = serializers.DateTimeField()
    status_changed_at = serializers.DateTimeField(allow_null=True)
    activated_at = serializers.DateTimeField(allow_null=True)
    ms_per_image = serializers.FloatField(allow_null=True, help_text="Measured by the conformance check.")
    gives_heatmap = serializers.BooleanField()
    local_acceptance = serializers.DictField(
        allow_null=True,
        help_text="Accepted at this site: the signed-off acceptance report (id, when, by whom, its AUC, sensitivity "
        "and specificity measured here); null when never accepted at this site.",
    )
    history = StatusChangeRecordSerializer(many=True)


class ModelDetailSerializer(ModelSerializer):
    manifest = serializers.DictField()
    conformance = serializers.DictField()


class StatusChangeRequestSerializer(serializers.Serializer):
    to_status = serializers.ChoiceField(choices=ModelStatus.choices)
    reason = serializers.CharField(max_length=2000)
    confirm_unvalidated = serializers.BooleanField(default=False)
    for_research = serializers.BooleanField(
        default=False,
        help_text="To accepted without a local acceptance test: for research use only, and the record says so.",
    )


class ModelListApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_VIEW)]

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=ModelKind.values, required=False),
            OpenApiParameter("status", str, enum=ModelStatus.values, required=False),
        ],
        responses=ModelSerializer(many=True),
    )
    def get(self, request):
        kind = request.query_params.get("kind", "")
        status = request.query_params.get("status", "")
        versions = model_inventory(
            user=request.user,
            kind=kind if kind in ModelKind.values else "",
            status=status if status in ModelStatus.values else "",
        )
        return Response(ModelSerializer([inventory_record(v) for v in versions], many=True).data)


class ModelDetailApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_VIEW)]

    @extend_schema(responses=ModelDetailSerializer)
    def get(self, request, pk: int):
        version = model_version_get(user=request.user, pk=pk)
        record = {**inventory_record(version), "manifest": version.manifest, "conformance": version.conformance}
        return Response(ModelDetailSerializer(record).data)


class ModelStatusApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_MANAGE)]

    @extend_schema(request=StatusChangeRequestSerializer, responses=ModelSerializer)
    def post(self, request, pk: int):
        version = model_version_get(user=request.user, pk=pk)
        body = StatusChangeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model_version_status_change(
            model_version=version,
            to_status=body.validated_data["to_status"],
            reason=body.validated_data["reason"],
            actor=request.user,
            confirm_unvalidated=body.validated_data["confirm_unvalidated"],
            for_research=body.validated_data["for_research"],
        )
        return Response(ModelSerializer(inventory_record(model_version_get(user=request.user, pk=pk))).data)
