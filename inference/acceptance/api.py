"""The local acceptance test in the API: GET /api/models/{id}/acceptance/ (protocols with their reports),
POST /api/models/{id}/acceptance/protocols/ (lock a protocol), POST .../protocols/{protocol_id}/reports/ (compute a
report), GET /api/models/{id}/acceptance/reports/{report_id}/ and POST .../reports/{report_id}/sign-off/."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability
from inference.acceptance.services import (
    acceptance_model_get,
    acceptance_protocol_lock,
    acceptance_report_compute,
    acceptance_report_get,
    acceptance_report_record,
    acceptance_report_sign_off,
)
from inference.models import AcceptanceProtocol


class ProtocolRequestSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    min_cancers = serializers.IntegerField(min_value=1)
    min_screens = serializers.IntegerField(min_value=1)
    min_auc_lower = serializers.FloatField(min_value=0, max_value=1)
    sensitivity_margin = serializers.FloatField(min_value=0, max_value=1)
    min_specificity = serializers.FloatField(min_value=0, max_value=1)
    max_recall_rate = serializers.FloatField(min_value=0, max_value=1)
    n_bootstrap = serializers.IntegerField(min_value=100, max_value=10000, default=1000)
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class ReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_version_id = serializers.IntegerField()
    protocol_id = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["pass", "fail", "insufficient"])
    computed_at = serializers.DateTimeField()
    computed_by = serializers.CharField()
    signed_off_at = serializers.DateTimeField(allow_null=True)
    signed_off_by = serializers.CharField(allow_null=True)
    sign_off_note = serializers.CharField()
    figures = serializers.DictField(
        help_text="screens, cancers, women; model/first_reader/double_reading figures with 95 % CIs; criteria; "
        "subgroups (manufacturer, age_band, density); insufficient; excluded."
    )


class ProtocolSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    locked_at = serializers.DateTimeField()
    written_by = serializers.CharField()
    criteria = serializers.DictField()
    notes = serializers.CharField()
    reports = ReportSerializer(many=True)


class SignOffRequestSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


def _protocol_record(protocol: AcceptanceProtocol) -> dict:
    return {
        "id": protocol.pk,
        "locked_at": protocol.locked_at,
        "written_by": protocol.written_by.get_username(),
        "criteria": protocol.criteria(),
        "notes": protocol.notes,
        "reports": [acceptance_report_record(r) for r in protocol.reports.all()],
    }


class AcceptanceApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_VIEW)]

    @extend_schema(responses=ProtocolSerializer(many=True))
    def get(self, request, pk: int):
        version = acceptance_model_get(user=request.user, pk=pk)
        protocols = version.acceptance_protocols.select_related("written_by").prefetch_related(
            "reports__computed_by", "reports__signed_off_by"
        )
        return Response(ProtocolSerializer([_protocol_record(p) for p in protocols], many=True).data)


class AcceptanceProtocolApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_ACCEPT)]

    @extend_schema(request=ProtocolRequestSerializer, responses={201: ProtocolSerializer})
    def post(self, request, pk: int):
        version = acceptance_model_get(user=request.user, pk=pk)
        body = ProtocolRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        protocol = acceptance_protocol_lock(user=request.user, model_version=version, **body.validated_data)
        return Response(ProtocolSerializer(_protocol_record(protocol)).data, status=status.HTTP_201_CREATED)


class AcceptanceComputeApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_ACCEPT)]

    @extend_schema(request=None, responses={201: ReportSerializer})
    def post(self, request, pk: int, protocol_id: int):
        version = acceptance_model_get(user=request.user, pk=pk)
        protocol = get_object_or_404(AcceptanceProtocol, pk=protocol_id, model_version=version)
        report = acceptance_report_compute(user=request.user, protocol=protocol)
        return Response(ReportSerializer(acceptance_report_record(report)).data, status=status.HTTP_201_CREATED)


class AcceptanceReportApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_VIEW)]

    @extend_schema(responses=ReportSerializer)
    def get(self, request, pk: int, report_id: int):
        version = acceptance_model_get(user=request.user, pk=pk)
        report = acceptance_report_get(user=request.user, model_version=version, pk=report_id)
        return Response(ReportSerializer(acceptance_report_record(report)).data)


class AcceptanceSignOffApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_ACCEPT)]

    @extend_schema(request=SignOffRequestSerializer, responses=ReportSerializer)
    def post(self, request, pk: int, report_id: int):
        version = acceptance_model_get(user=request.user, pk=pk)
        report = acceptance_report_get(user=request.user, model_version=version, pk=report_id)
        body = SignOffRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        report = acceptance_report_sign_off(user=request.user, report=report, note=body.validated_data["note"])
        return Response(ReportSerializer(acceptance_report_record(report)).data)
