"""Reading API: the same services, selectors, blinding and role checks as the reading pages."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability
from cases.models import Read
from cases.reading import claims, sessions
from cases.reading import services as reading
from cases.reading.presenters import worklist_query_from, worklist_rows, worklist_studies
from cases.reading.serializers import (
    AddendumCreateSerializer,
    AddendumSerializer,
    OutcomeCreateSerializer,
    OutcomeSerializer,
    ReadSerializer,
    ReadSubmitSerializer,
    WorklistPageSerializer,
    WorklistParamsSerializer,
    WorklistRowSerializer,
)
from cases.reading.statistics import may_see_statistics, reading_statistics, statistics_json
from cases.reading.worklist import SORTS, Queue, reads_visible_to, worklist_counts
from cases.studies import selectors


def visible_read(*, user, pk: int) -> Read:
    """A read the user may see (reads_visible_to), else 404: a blinded reader learns nothing, not even that it
    exists."""
    study_id = Read.objects.filter(pk=pk).values_list("study_id", flat=True).first()
    if study_id is None:
        raise Http404("No such read.")
    study = selectors.study_get(user=user, pk=study_id)
    read = next((r for r in reads_visible_to(user=user, study=study) if r.pk == pk), None)
    if read is None:
        raise Http404("No such read.")
    return read


def _read_response(*, user, read_id: int, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(ReadSerializer(visible_read(user=user, pk=read_id)).data, status=status_code)


class WorklistApi(GenericAPIView):
    permission_classes = [HasCapability(Capability.STUDY_READ)]
    serializer_class = WorklistRowSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "queue", str, enum=list(Queue.LABELS), description="Default: the first queue that has work."
            ),
            OpenApiParameter("sort", str, enum=list(SORTS), description="suspicion: highest AI suspicion first."),
            OpenApiParameter("search", str, description="Part of a patient ID or accession number."),
            OpenApiParameter("page", int),
        ],
        responses=WorklistPageSerializer,
    )
    def get(self, request):
        params = WorklistParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        counts = worklist_counts(user=request.user)
        query = worklist_query_from(params.validated_data, user=request.user, counts=counts)
        page = self.paginate_queryset(worklist_studies(user=request.user, query=query))
        rows = worklist_rows(user=request.user, query=query, studies=page)
        response = self.get_paginated_response(WorklistRowSerializer(rows, many=True).data)
        response.data["queue"] = query.queue
        response.data["sort"] = query.sort
        response.data["counts"] = counts
        return response


class StudyClaimApi(APIView):
    permission_classes = [HasCapability(Capability.STUDY_READ)]

    @extend_schema(request=None, responses=ReadSerializer, description="Take the next free read (or resume yours).")
    def post(self, request, pk: int):
        selectors.study_get(user=request.user, pk=pk)  # 404 for a study that does not exist
        read = claims.read_claim(study_id=pk, user=request.user)
        return _read_response(user=request.user, read_id=read.pk)


class ReadDetailApi(APIView):
    permission_classes = [HasCapability(Capability.STUDY_READ)]

    @extend_schema(responses=ReadSerializer)
    def get(self, request, pk: int):
        return _read_response(user=request.user, read_id=pk)


class ReadSubmitApi(APIView):
    permission_classes = [HasCapability(Capability.STUDY_READ)]

    @extend_schema(request=ReadSubmitSerializer, responses=ReadSerializer)
    def post(self, request, pk: int):
        visible_read(user=request.user, pk=pk)
        payload = ReadSubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        read = reading.read_submit(
            read_id=pk,
            user=request.user,
            assessments=payload.assessment_inputs(),
            density=payload.validated_data["density"],
            technical_recalls=payload.technical_recall_inputs(),
            comments=payload.validated_data["comments"],
        )
        return _read_response(user=request.user, read_id=read.pk)


class ReadReleaseApi(APIView):
    permission_classes = [HasCapability(Capability.STUDY_READ)]

    @extend_schema(
        request=None,
        responses={204: None},
        description="Give up a read in progress (its reader, or a lead radiologist) so that another can claim it.",
    )
    def post(self, request, pk: int):
        # Not visible_read: someone else's read in progress is invisible to everyone but its reader, and refusing
        # it must say 403 (not yours), as the page does, rather than pretend it does not exist.
        if not Read.objects.filter(pk=pk).exists():
            raise Http404("No such read.")
        claims.read_release(read_id=pk, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReadAddendumApi(APIView):
    permission_classes = [HasCapability(Capability.STUDY_READ)]

    @extend_schema(request=AddendumCreateSerializer, responses={201: AddendumSerializer})
    def post(self, request, pk: int):
        visible_read(user=request.user, pk=pk)
        payload = AddendumCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        addendum = reading.read_addendum_create(read_id=pk, user=request.user, text=payload.validated_data["text"])
        return Response(AddendumSerializer(addendum).data, status=status.HTTP_201_CREATED)


class StudyArbitrationApi(APIView):
    permission_classes = [HasCapability(Capability.ARBITRATE)]

    @extend_schema(request=ReadSubmitSerializer, responses={201: ReadSerializer})
    def post(self, request, pk: int):
        selectors.study_get(user=request.user, pk=pk)
        payload = ReadSubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        read = reading.arbitration_submit(
            study_id=pk,
            user=request.user,
            assessments=payload.assessment_inputs(),
            density=payload.validated_data["density"],
            technical_recalls=payload.technical_recall_inputs(),
            comments=payload.validated_data["comments"],
        )
        return _read_response(user=request.user, read_id=read.pk, status_code=status.HTTP_201_CREATED)


class StudyOutcomeApi(APIView):
    permission_classes = [HasCapability(Capability.OUTCOME_RECORD)]

    @extend_schema(request=OutcomeCreateSerializer, responses={201: OutcomeSerializer})
    def post(self, request, pk: int):
        selectors.study_get(user=request.user, pk=pk)
        payload = OutcomeCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        outcome = reading.outcome_record(study_id=pk, user=request.user, **payload.validated_data)
        return Response(OutcomeSerializer(outcome).data, status=status.HTTP_201_CREATED)


class _SeesStatistics(HasCapability(Capability.READING_STATISTICS)):
    message = "Your role does not allow this (reading.statistics)."

    def has_permission(self, request, view) -> bool:
        return may_see_statistics(request.user)


class ReadingStatisticsApi(APIView):
    """Reading statistics (cases.reading.statistics) over the last 7, 28 and 365 days: your own row and the sites
    with reading.statistics, every reader's row with reading.statistics_all. Rates in percent, times in seconds."""

    permission_classes = [_SeesStatistics]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(statistics_json(reading_statistics(user=request.user)))


def _session_json(session, *, user) -> dict:
    """A reading session and, while open, its progress ("case n of m")."""
    body = {
        "id": session.pk,
        "started_at": session.started_at.isoformat(),
        "ended_at": session.ended_at.isoformat() if session.ended_at else None,
        "reads": session.reads.filter(status=Read.Status.SUBMITTED).count(),
    }
    if session.is_open:
        progress = sessions.session_progress(session=session, user=user)
        body["progress"] = {"done": progress.done, "total": progress.total}
    return body


class ReadingSessionApi(APIView):
    """The reader's reading session (cases.reading.sessions): GET the open one (404 when none), POST to start one
    (201, with the next case's read claimed for you: `next_read`, null when the queue is empty), DELETE to end it."""

    permission_classes = [HasCapability(Capability.STUDY_READ)]

    @extend_schema(responses={200: dict})
    def get(self, request):
        session = sessions.session_open_get(user=request.user)
        if session is None:
            raise Http404("No reading session open.")
        return Response(_session_json(session, user=request.user))

    @extend_schema(request=None, responses={201: dict})
    def post(self, request):
        session = sessions.session_start(user=request.user)
        following = sessions.next_case(user=request.user)
        body = {**_session_json(session, user=request.user), "next_read": following.pk if following else None}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: dict})
    def delete(self, request):
        return Response(_session_json(sessions.session_end(user=request.user), user=request.user))
