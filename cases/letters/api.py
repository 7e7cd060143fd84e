"""The result letters' REST API: the same services, selectors and role checks as the pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability
from cases.letters import selectors, services
from cases.letters.pages import MAX_PRINT, pdf_response
from cases.models.letters import Letter, ScreeningResultKind
from cases.studies import selectors as study_selectors


class LetterSerializer(serializers.ModelSerializer):
    reference = serializers.CharField()
    study = serializers.IntegerField(source="confirmation.study_id")
    patient_id = serializers.CharField(source="confirmation.study.patient.patient_id")
    result = serializers.CharField(source="confirmation.result")
    template_version = serializers.IntegerField(source="template.version")
    made_by = serializers.StringRelatedField()
    printed_by = serializers.StringRelatedField()
    current = serializers.SerializerMethodField(help_text="False when the letter was made again since.")
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Letter
        fields = [
            "id", "reference", "study", "patient_id", "recipient", "result", "subject", "template_version",
            "pdf_sha256", "made_by", "made_at", "printed_at", "printed_by", "current", "pdf_url",
        ]  # fmt: skip

    def get_current(self, letter) -> bool:
        return not getattr(letter, "superseded", False)

    def get_pdf_url(self, letter) -> str:
        return f"/api/letters/{letter.pk}/pdf/"


class ConfirmSerializer(serializers.Serializer):
    seen_result = serializers.ChoiceField(
        choices=ScreeningResultKind.choices, help_text="The result shown to the person confirming (study API)."
    )


class PrintSerializer(serializers.Serializer):
    letters = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=MAX_PRINT)


class LetterListApi(ListAPIView):
    permission_classes = [HasCapability(Capability.LETTER_VIEW)]
    serializer_class = LetterSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("show", str, enum=list(selectors.SHOW), description="to_print (default), printed, all"),
            OpenApiParameter("result", str, enum=ScreeningResultKind.values),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        show = self.request.query_params.get("show", "to_print")
        return selectors.letters_list(show=show if show in selectors.SHOW else "to_print",
                                      result=self.request.query_params.get("result", ""))  # fmt: skip


class LetterPdfApi(APIView):
    permission_classes = [HasCapability(Capability.LETTER_VIEW)]

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        letter = get_object_or_404(Letter.objects.select_related("confirmation"), pk=pk)
        return pdf_response(services.letter_downloaded(letter=letter, user=request.user), f"{letter.reference}.pdf")


class LetterPrintApi(APIView):
    permission_classes = [HasCapability(Capability.LETTER_VIEW)]

    @extend_schema(request=PrintSerializer, responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def post(self, request):
        payload = PrintSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ids = payload.validated_data["letters"]
        found = {letter.pk: letter for letter in Letter.objects.select_related("confirmation").filter(pk__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            return Response({"detail": f"No letters {missing}."}, status=status.HTTP_404_NOT_FOUND)
        letters = [found[i] for i in ids]
        return pdf_response(services.letters_print(letters=letters, user=request.user), f"letters-{len(letters)}.pdf")


class ResultConfirmApi(APIView):
    permission_classes = [HasCapability(Capability.RESULT_CONFIRM)]

    @extend_schema(request=ConfirmSerializer, responses={201: LetterSerializer})
    def post(self, request, pk: int):
        study = study_selectors.study_get(user=request.user, pk=pk)
        payload = ConfirmSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        confirmation = services.result_confirm(
            study=study, seen_result=payload.validated_data["seen_result"], user=request.user
        )
        letter = confirmation.letters.select_related("template", "made_by", "confirmation__study__patient").get()
        return Response(LetterSerializer(letter).data, status=status.HTTP_201_CREATED)
