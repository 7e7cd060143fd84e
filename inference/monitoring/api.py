"""Monitoring in the API (model.monitor, resume model.resume): GET /api/models/{id}/monitoring/ (the series as
JSON), POST /api/models/{id}/monitoring/run/ (compute now, through the worker), GET and POST
/api/models/stop-rules/, GET /api/models/alerts/ (stop rule trips), POST /api/models/{id}/resume/."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability
from inference.inventory.selectors import model_version_get
from inference.models import ModelKind, ModelVersion, StopRule, StopRuleTrip
from inference.monitoring.compute import monitoring_request, monitoring_series
from inference.monitoring.stop_rules import model_resume, open_alerts, stop_rule_save


class MonitoringDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    computed_at = serializers.DateTimeField()
    in_baseline = serializers.BooleanField()
    predictions = serializers.IntegerField()
    studies = serializers.IntegerField()
    views_per_exam = serializers.FloatField(allow_null=True)
    inputs = serializers.DictField(help_text="Images per manufacturer, model name and software version.")
    unseen_equipment = serializers.ListField(child=serializers.DictField())
    histogram = serializers.ListField(child=serializers.IntegerField(), help_text="Counts in ten bins of 0.1.")
    score_mean = serializers.FloatField(allow_null=True)
    psi = serializers.FloatField(allow_null=True)
    ks_statistic = serializers.FloatField(allow_null=True)
    ks_p_value = serializers.FloatField(allow_null=True)
    flagged_studies = serializers.IntegerField()
    flag_rate = serializers.FloatField(allow_null=True)
    cusum_upper = serializers.FloatField(allow_null=True)
    cusum_lower = serializers.FloatField(allow_null=True)
    agreement_breast = serializers.FloatField(allow_null=True)
    agreement_study = serializers.FloatField(allow_null=True)
    agreement = serializers.DictField()
    sensitivity = serializers.FloatField(allow_null=True)
    outcomes = serializers.DictField()


class MonitoringSeriesSerializer(serializers.Serializer):
    model = serializers.DictField()
    baseline = serializers.DictField(allow_null=True)
    limits = serializers.DictField()
    pixel_statistics = serializers.CharField()
    days = MonitoringDaySerializer(many=True)


class StopRuleSerializer(serializers.ModelSerializer):
    description = serializers.CharField(source="describe", read_only=True)

    class Meta:
        model = StopRule
        fields = [
            "id", "model_version", "model_kind", "rule_type", "low", "high", "consecutive_days", "threshold",
            "enabled", "description", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at"]


class StopRuleTripSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model_version.name", read_only=True)

    class Meta:
        model = StopRuleTrip
        fields = ["id", "rule", "model_version", "model_name", "day", "figures", "reason", "suspended",
                  "created_at", "resolved_at"]  # fmt: skip


class ResumeRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    confirm_unvalidated = serializers.BooleanField(default=False)


class RunResponseSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
    message_id = serializers.IntegerField()


class ModelMonitoringApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_MONITOR)]

    @extend_schema(responses=MonitoringSeriesSerializer)
    def get(self, request, pk: int):
        return Response(MonitoringSeriesSerializer(monitoring_series(model_version_get(user=request.user, pk=pk))).data)


class ModelMonitoringRunApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_MONITOR)]

    @extend_schema(request=None, responses={202: RunResponseSerializer})
    def post(self, request, pk: int):
        message = monitoring_request(user=request.user, model=model_version_get(user=request.user, pk=pk))
        return Response({"queued": True, "message_id": message.pk}, status=status.HTTP_202_ACCEPTED)


class StopRuleListApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_MONITOR)]

    @extend_schema(
        parameters=[OpenApiParameter("model", int, required=False, description="Rules that apply to this model.")],
        responses=StopRuleSerializer(many=True),
    )
    def get(self, request):
        rules = StopRule.objects.select_related("model_version")
        model = request.query_params.get("model", "")
        if model.isdigit():
            version = model_version_get(user=request.user, pk=int(model))
            rules = rules.filter(model_version=version) | rules.filter(
                model_version__isnull=True, model_kind=version.kind
            )
        return Response(StopRuleSerializer(rules, many=True).data)

    @extend_schema(request=StopRuleSerializer, responses={201: StopRuleSerializer})
    def post(self, request):
        body = StopRuleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        version = data.get("model_version")
        if version is not None:
            model_version_get(user=request.user, pk=version.pk)
        if data.get("model_kind") and data["model_kind"] not in ModelKind.values:
            raise serializers.ValidationError({"model_kind": "Not a model kind."})
        rule = stop_rule_save(user=request.user, rule=StopRule(**data))
        return Response(StopRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class AlertListApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_MONITOR)]

    @extend_schema(
        parameters=[OpenApiParameter("all", bool, required=False, description="Every trip, not only open alerts.")],
        responses=StopRuleTripSerializer(many=True),
    )
    def get(self, request):
        trips = (
            StopRuleTrip.objects.select_related("model_version") if request.query_params.get("all") else open_alerts()
        )
        return Response(StopRuleTripSerializer(trips, many=True).data)


class ModelResumeApi(APIView):
    permission_classes = [HasCapability(Capability.MODEL_RESUME)]

    @extend_schema(request=ResumeRequestSerializer, responses=StopRuleTripSerializer(many=True))
    def post(self, request, pk: int):
        version: ModelVersion = model_version_get(user=request.user, pk=pk)
        body = ResumeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model_resume(model_version=version, user=request.user, **body.validated_data)
        trips = StopRuleTrip.objects.filter(model_version=version).select_related("model_version")[:50]
        return Response(StopRuleTripSerializer(trips, many=True).data)
