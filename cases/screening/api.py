"""The clinic's REST API: the same services, selectors and role checks as the pages."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability, role_can
from cases.models import Appointment
from cases.screening import appointments as services
from cases.screening import matching, selectors
from cases.screening.presenters import appointment_as_dict, record_as_dict
from core.errors import ApplicationError


class AppointmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    episode = serializers.IntegerField()
    accession_number = serializers.CharField()
    study_instance_uid = serializers.CharField()
    starts_at = serializers.DateTimeField()
    site = serializers.CharField()
    station_ae_title = serializers.CharField()
    status = serializers.ChoiceField(choices=Appointment.Status.choices)
    status_display = serializers.CharField()
    patient_id = serializers.CharField()
    patient_name = serializers.CharField()
    patient_birth_date = serializers.DateField(allow_null=True)
    identity_confirmed = serializers.BooleanField()


class StatusChangeSerializer(serializers.Serializer):
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    source = serializers.CharField()
    source_detail = serializers.CharField()
    changed_by = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class AppointmentDetailSerializer(AppointmentSerializer):
    status_changes = StatusChangeSerializer(many=True)
    performed_steps = serializers.ListField(child=serializers.DictField())
    studies = serializers.ListField(child=serializers.IntegerField())
    mammographer_record = serializers.DictField()


class ScheduleSerializer(serializers.Serializer):
    patient_id = serializers.CharField(max_length=64)
    family_name = serializers.CharField(max_length=100)
    given_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    birth_date = serializers.DateField()
    starts_at = serializers.DateTimeField(help_text="With its time zone, or in the site's.")
    site = serializers.CharField(max_length=64)
    station_ae_title = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")


class StatusRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["check_in", "outcome", "cancel"])
    identity_confirmed = serializers.BooleanField(required=False, default=False, help_text="check_in: required true.")
    outcome = serializers.ChoiceField(choices=[o.value for o in services.OUTCOMES], required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


def _detail(appointment: Appointment) -> dict:
    return {
        **appointment_as_dict(appointment),
        "status_changes": [
            {
                "from_status": c.from_status,
                "to_status": c.to_status,
                "source": c.source,
                "source_detail": c.source_detail,
                "changed_by": str(c.changed_by) if c.changed_by else None,
                "reason": c.reason,
                "created_at": c.created_at,
            }
            for c in appointment.status_changes.all()
        ],  # fmt: skip
        "performed_steps": [
            {
                "sop_instance_uid": s.sop_instance_uid,
                "status": s.status,
                "station_ae_title": s.station_ae_title,
                "referenced_images": len(s.referenced_sop_instance_uids),
                "outcome_note": s.outcome_note,
                "discontinuation_reason": s.discontinuation_reason,
                "created_at": s.created_at,
            }
            for s in appointment.performed_steps.all()
        ],  # fmt: skip
        "studies": [s.pk for s in appointment.studies.all()],
        "mammographer_record": record_as_dict(appointment),
    }


class AppointmentListApi(APIView):
    def get_permissions(self):
        capability = Capability.APPOINTMENT_SCHEDULE if self.request.method == "POST" else Capability.APPOINTMENT_VIEW
        return [HasCapability(capability)()]

    @extend_schema(
        parameters=[
            OpenApiParameter("date", date, description="The day (YYYY-MM-DD, the site's calendar); today if absent."),
            OpenApiParameter("site", str, description="One site only."),
        ],
        responses=AppointmentSerializer(many=True),
    )
    def get(self, request):
        try:
            day = date.fromisoformat(request.query_params["date"]) if "date" in request.query_params else None
        except ValueError:
            return Response({"detail": "date must be YYYY-MM-DD."}, status=status.HTTP_400_BAD_REQUEST)
        found = selectors.clinic_list(
            user=request.user, day=day or timezone.localdate(), site=request.query_params.get("site", "")
        )
        return Response([appointment_as_dict(a) for a in found])

    @extend_schema(request=ScheduleSerializer, responses={201: AppointmentDetailSerializer})
    def post(self, request):
        payload = ScheduleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        starts_at: datetime = data["starts_at"]
        appointment = services.appointment_schedule(
            woman=services.WomanDetails(
                patient_id=data["patient_id"], family_name=data["family_name"], given_name=data["given_name"],
                birth_date=data["birth_date"],
            ),
            starts_at=starts_at if timezone.is_aware(starts_at) else timezone.make_aware(starts_at),
            site=data["site"], station_ae_title=data["station_ae_title"], user=request.user,
        )  # fmt: skip
        detail = _detail(selectors.appointment_get(user=request.user, pk=appointment.pk))
        return Response(detail, status=status.HTTP_201_CREATED)


class AppointmentDetailApi(APIView):
    permission_classes = [HasCapability(Capability.APPOINTMENT_VIEW)]

    @extend_schema(responses=AppointmentDetailSerializer)
    def get(self, request, pk: int):
        return Response(_detail(selectors.appointment_get(user=request.user, pk=pk)))


class AppointmentStatusApi(APIView):
    """Check in (identity confirmed), record the outcome, or cancel: the pages' actions."""

    permission_classes = [HasCapability(Capability.APPOINTMENT_VIEW)]
    NEEDS = {"check_in": Capability.APPOINTMENT_ATTEND, "outcome": Capability.APPOINTMENT_ATTEND,
             "cancel": Capability.APPOINTMENT_SCHEDULE}  # fmt: skip

    @extend_schema(request=StatusRequestSerializer, responses=AppointmentDetailSerializer)
    def post(self, request, pk: int):
        selectors.appointment_get(user=request.user, pk=pk)
        payload = StatusRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if not role_can(request.user, self.NEEDS[data["action"]]):
            raise PermissionDenied(f"Your role does not allow this ({self.NEEDS[data['action']]}).")
        if data["action"] == "check_in":
            services.appointment_check_in(
                appointment_id=pk, user=request.user, identity_confirmed=data["identity_confirmed"]
            )
        elif data["action"] == "outcome":
            if "outcome" not in data:
                raise ApplicationError("Give the outcome.")
            services.appointment_outcome_record(
                appointment_id=pk, user=request.user, outcome=data["outcome"], reason=data["reason"]
            )
        else:
            services.appointment_cancel(appointment_id=pk, user=request.user, reason=data["reason"])
        return Response(_detail(selectors.appointment_get(user=request.user, pk=pk)))


class HeldStudySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    patient_id = serializers.CharField()
    accession_number = serializers.CharField()
    study_instance_uid = serializers.CharField()
    held_reason = serializers.CharField()
    image_count = serializers.IntegerField()
    received_at = serializers.DateTimeField()
    candidates = AppointmentSerializer(many=True)


class HeldStudyListApi(APIView):
    permission_classes = [HasCapability(Capability.IMAGES_MATCH)]

    @extend_schema(responses=HeldStudySerializer(many=True))
    def get(self, request):
        return Response(
            [
                {"id": s.pk, "patient_id": s.patient.patient_id, "accession_number": s.accession_number,
                 "study_instance_uid": s.study_instance_uid, "held_reason": s.held_reason,
                 "image_count": len(s.images.all()), "received_at": s.created_at,
                 "candidates": [appointment_as_dict(a) for a in selectors.match_candidates(user=request.user, study=s)]}
                for s in selectors.held_studies(user=request.user)
            ]
        )  # fmt: skip


class MatchRequestSerializer(serializers.Serializer):
    appointment = serializers.IntegerField(help_text="An appointment of the same woman (same patient ID).")


class ReleaseRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, help_text="Why the images are read without an appointment.")


class HeldStudyDecisionSerializer(serializers.Serializer):
    study = serializers.IntegerField()
    status = serializers.CharField()
    appointment = serializers.IntegerField(allow_null=True)


class HeldStudyMatchApi(APIView):
    """Attach a held study to an appointment of the same woman."""

    permission_classes = [HasCapability(Capability.IMAGES_MATCH)]

    @extend_schema(request=MatchRequestSerializer, responses=HeldStudyDecisionSerializer)
    def post(self, request, pk: int):
        study = selectors.held_study_get(user=request.user, pk=pk)
        payload = MatchRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        study = matching.held_study_match(
            study_id=study.pk, appointment_id=payload.validated_data["appointment"], user=request.user
        )
        return Response({"study": study.pk, "status": study.status, "appointment": study.appointment_id})


class HeldStudyReleaseApi(APIView):
    """Release a held study for reading without an appointment, with the reason."""

    permission_classes = [HasCapability(Capability.IMAGES_MATCH)]

    @extend_schema(request=ReleaseRequestSerializer, responses=HeldStudyDecisionSerializer)
    def post(self, request, pk: int):
        study = selectors.held_study_get(user=request.user, pk=pk)
        payload = ReleaseRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        reason = payload.validated_data["reason"]
        study = matching.held_study_release(study_id=study.pk, user=request.user, reason=reason)
        return Response({"study": study.pk, "status": study.status, "appointment": None})
