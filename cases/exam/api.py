"""REST API: the same services, selectors and role checks as the pages."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability, role_can
from cases.exam.serializers import (
    FileOutcomeSerializer,
    StudyDetailSerializer,
    StudyImagesSerializer,
    StudyListSerializer,
    StudyUploadSerializer,
)
from cases.studies import selectors
from cases.studies.files import image_file_response
from cases.studies.ingestion import study_upload
from cases.studies.uploads import incoming_files, request_too_large
from core.request_limits import too_large_response
from inference.models import InferenceJob
from inference.serving.jobs import inference_job_retry

UPLOAD_RESPONSE = inline_serializer(
    "StudyUploadResponse", {"study": StudyDetailSerializer(), "files": FileOutcomeSerializer(many=True)}
)
UPLOAD_REJECTED = inline_serializer(
    "StudyUploadRejected", {"detail": serializers.CharField(), "files": FileOutcomeSerializer(many=True)}
)


class StudyListCreateApi(GenericAPIView):
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = StudyListSerializer

    def get_permissions(self):
        capability = Capability.STUDY_UPLOAD if self.request.method == "POST" else Capability.STUDY_VIEW
        return [HasCapability(capability)()]

    def get_queryset(self):
        return selectors.study_list(user=self.request.user)

    @extend_schema(responses=StudyListSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(StudyListSerializer(page, many=True).data)

    @extend_schema(
        request=StudyUploadSerializer,
        responses={
            201: UPLOAD_RESPONSE,
            400: UPLOAD_REJECTED,
        },
    )
    def post(self, request):
        if request_too_large(request):
            return too_large_response(request)
        payload = StudyUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        result = study_upload(user=request.user, files=incoming_files(data.pop("files")), **data)
        return _upload_response(request, result, created=True)


class StudyImagesApi(APIView):
    """Add images to a study (only until its first read is claimed; PNG/JPEG need the study's patient_id)."""

    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [HasCapability(Capability.STUDY_UPLOAD)]

    @extend_schema(request=StudyImagesSerializer, responses={200: UPLOAD_RESPONSE, 400: UPLOAD_REJECTED})
    def post(self, request, pk: int):
        if request_too_large(request):
            return too_large_response(request)
        study = selectors.study_get(user=request.user, pk=pk)
        payload = StudyImagesSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        result = study_upload(user=request.user, files=incoming_files(data.pop("files")), study=study, **data)
        return _upload_response(request, result, created=False)


def _upload_response(request, result, *, created: bool) -> Response:
    outcomes = FileOutcomeSerializer(result.outcomes, many=True).data
    if result.study is None or not result.accepted:
        return Response({"detail": "No file was accepted.", "files": outcomes}, status=status.HTTP_400_BAD_REQUEST)
    study = selectors.study_get(user=request.user, pk=result.study.pk)
    body = {"study": StudyDetailSerializer(study, context={"request": request}).data, "files": outcomes}
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class StudyDetailApi(APIView):
    permission_classes = [HasCapability(Capability.STUDY_VIEW)]

    @extend_schema(responses=StudyDetailSerializer)
    def get(self, request, pk: int):
        study = selectors.study_get(user=request.user, pk=pk)
        return Response(StudyDetailSerializer(study, context={"request": request}).data)


class ImageFileApi(APIView):
    """The image's original (DICOM/PNG/JPEG as uploaded), its PNG preview, the reading viewer's full-resolution
    pixels (`pixels`: MVP1, gzip, see imaging/viewer_pixels.py), or the Grad-CAM heatmap/overlay."""

    permission_classes = [HasCapability(Capability.STUDY_VIEW)]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, pk: int, kind: str):
        return image_file_response(request, pk=pk, kind=kind)


class JobRetryApi(APIView):
    permission_classes = [HasCapability(Capability.STUDY_UPLOAD)]

    @extend_schema(
        request=None,
        responses=inline_serializer("JobRetry", {"id": serializers.IntegerField(), "status": serializers.CharField()}),
    )
    def post(self, request, pk: int):
        job = InferenceJob.objects.filter(pk=pk).select_related("image").first()
        if job is None or not role_can(request.user, Capability.STUDY_VIEW):
            return Response({"detail": "No such job."}, status=status.HTTP_404_NOT_FOUND)
        selectors.study_get(user=request.user, pk=job.image.study_id)
        job = inference_job_retry(job=job)
        return Response({"id": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED)
