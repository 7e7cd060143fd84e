"""Performance API: the stored strategies report (the same figures as its page and exports), and a lead's request
to compute it again. Nothing here computes figures."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability
from cases.models import StrategyReport
from cases.performance.strategy_cutoffs import DEFAULT_EXTRA_RECALL_BUDGET_PER_1000
from cases.performance.strategy_presenters import strategy_report_document, strategy_report_state_document
from cases.performance.strategy_report import StrategyParameters
from cases.performance.strategy_selectors import strategy_report_get, strategy_report_state
from cases.performance.strategy_services import strategy_report_request
from inference.models import ModelVersion


class StrategyRequestSerializer(serializers.Serializer):
    model_version = serializers.SlugRelatedField(
        slug_field="name", queryset=ModelVersion.objects.malignancy(), required=False, allow_null=True
    )
    split_date = serializers.DateField(required=False, allow_null=True)
    extra_recall_budget_per_1000 = serializers.FloatField(
        required=False, min_value=0, max_value=1000, default=DEFAULT_EXTRA_RECALL_BUDGET_PER_1000
    )


class StrategiesApi(APIView):
    """GET: the newest computed report, and any newer one queued, computing or failed. POST: compute again
    (lead radiologists)."""

    permission_classes = [HasCapability(Capability.PERFORMANCE_VIEW)]

    @extend_schema(
        operation_id="performance_strategies_latest",
        responses={200: OpenApiResponse(description="report, pending, failed")},
    )
    def get(self, request):
        state = strategy_report_state(user=request.user)
        return Response(
            {
                "report": strategy_report_document(state.shown) if state.shown else None,
                "pending": strategy_report_state_document(state.pending),
                "failed": strategy_report_state_document(state.failed),
            }
        )

    @extend_schema(
        operation_id="performance_strategies_compute",
        request=StrategyRequestSerializer,
        responses={202: OpenApiResponse(description="queued")},
    )
    def post(self, request):
        payload = StrategyRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        report = strategy_report_request(
            user=request.user,
            trigger=StrategyReport.Trigger.REQUEST,
            parameters=StrategyParameters(
                split_date=data.get("split_date"),
                extra_recall_budget_per_1000=data["extra_recall_budget_per_1000"],
            ),
            model_version=data.get("model_version"),
        )
        return Response(strategy_report_state_document(report), status=status.HTTP_202_ACCEPTED)


class StrategyReportApi(APIView):
    permission_classes = [HasCapability(Capability.PERFORMANCE_VIEW)]

    @extend_schema(
        operation_id="performance_strategies_report",
        responses={200: OpenApiResponse(description="one computed report")},
    )
    def get(self, request, pk: int):
        report = strategy_report_get(user=request.user, pk=pk)
        if report is None:
            raise Http404("No computed strategies report with that number.")
        return Response(strategy_report_document(report))
