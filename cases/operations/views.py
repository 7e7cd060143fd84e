"""The operations page and API, for the site's IT: work that failed or is overdue across the platform (analyses,
result objects, deliveries, reports: the outbox), with the reason and a retry. Study identifiers and DICOM UIDs
only: no patient names, no images."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability, capability_required
from accounts.roles import Capability
from audit.services import audit_record
from cases.dicom.api import DeliverySerializer
from cases.dicom.delivery import dicom_delivery_retry
from cases.dicom.results import dicom_result_retry
from cases.dicom.selectors import results_counts, results_needing_attention
from core.errors import ApplicationError
from core.models import OutboxMessage
from core.outbox import outbox_retry


@capability_required(Capability.OPERATIONS_VIEW)
def operations_overview(request):
    context = {**results_needing_attention(), "counts": results_counts()}
    return render(request, "operations/overview.html", context)


@require_POST
@capability_required(Capability.OPERATIONS_VIEW)
def outbox_message_retry(request, pk: int):
    message = outbox_retry_audited(pk=pk, user=request.user)
    messages.success(request, f"{message.description}: asked for again.")
    return redirect("operations:overview")


@require_POST
@capability_required(Capability.OPERATIONS_VIEW)
def result_retry(request, pk: int):
    try:
        obj = dicom_result_retry(result_id=pk, user=request.user)
        messages.success(request, f"{obj.get_kind_display()} of study {obj.study_id}: asked for again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("operations:overview")


@require_POST
@capability_required(Capability.OPERATIONS_VIEW)
def delivery_retry(request, pk: int):
    try:
        delivery = dicom_delivery_retry(delivery_id=pk, user=request.user)
        messages.success(request, f"Delivery to {delivery.destination}: asked for again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("operations:overview")


def outbox_retry_audited(*, pk: int, user) -> OutboxMessage:
    message = outbox_retry(message_id=pk)
    audit_record(action="outbox.retried", actor=user, obj=message,
                 details={"key": message.key, "task": message.task, "last_error": message.last_error})  # fmt: skip
    return message


class OutboxMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = OutboxMessage
        fields = [
            "id", "key", "task", "description", "subject", "status", "send_after", "dispatches", "send_failures",
            "last_error", "worker", "created_at", "sent_at", "started_at", "finished_at",
        ]  # fmt: skip


class FailedObjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.IntegerField(source="study_id")
    image = serializers.IntegerField(source="image_id", allow_null=True)
    kind = serializers.CharField()
    version = serializers.IntegerField()
    error_message = serializers.CharField()
    attempts = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class OperationsSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    objects = FailedObjectSerializer(many=True, help_text="Result objects that could not be made (current ones).")
    deliveries = DeliverySerializer(many=True, help_text="Deliveries that failed, or are pending after a failure.")
    steps = OutboxMessageSerializer(many=True, help_text="Steps (outbox) that failed or are overdue.")


class OperationsApi(APIView):
    permission_classes = [HasCapability(Capability.OPERATIONS_VIEW)]

    @extend_schema(responses=OperationsSerializer)
    def get(self, request):
        return Response(OperationsSerializer({**results_needing_attention(), "counts": results_counts()}).data)


class OutboxRetryApi(APIView):
    permission_classes = [HasCapability(Capability.OPERATIONS_VIEW)]

    @extend_schema(request=None, responses=OutboxMessageSerializer)
    def post(self, request, pk: int):
        return Response(OutboxMessageSerializer(outbox_retry_audited(pk=pk, user=request.user)).data, status=202)
