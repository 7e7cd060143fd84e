from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cases.letters.selectors import result_confirmation_as_dict
from cases.models import Image, Study
from cases.reading.selectors import screening_outcome_visible_to
from cases.reading.serializers import ReadSerializer
from cases.reading.worklist import reads_visible_to
from cases.screening.presenters import appointment_as_dict, record_as_dict
from cases.studies import selectors
from cases.studies.ai_density import study_ai_density
from inference.serving.outputs import CALL_HELP, SCORE_KIND_HELP, prediction_output


class StudyUploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False)
    patient_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    patient_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    patient_birth_date = serializers.DateField(required=False, allow_null=True, default=None)
    accession_number = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    study_date = serializers.DateField(required=False, allow_null=True, default=None)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    laterality = serializers.ChoiceField(choices=["", "L", "R"], required=False, default="")
    view = serializers.ChoiceField(choices=["", "CC", "MLO"], required=False, default="")


class StudyImagesSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False)
    patient_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", help_text="Required for PNG/JPEG files."
    )
    laterality = serializers.ChoiceField(choices=["", "L", "R"], required=False, default="")
    view = serializers.ChoiceField(choices=["", "CC", "MLO"], required=False, default="")


class FileOutcomeSerializer(serializers.Serializer):
    filename = serializers.CharField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    image_id = serializers.IntegerField(allow_null=True)
    code = serializers.CharField()
    reason = serializers.CharField()


class PredictionSerializer(serializers.Serializer):
    """One image's AI output, saying what it holds (inference.serving.outputs): a call only where the model is
    validated, a research score otherwise."""

    score = serializers.SerializerMethodField(help_text="0 to 1. What it is: `score_kind`.")
    score_kind = serializers.SerializerMethodField(help_text=SCORE_KIND_HELP)
    operating_point = serializers.FloatField(source="threshold", help_text="The model's operating point on the score.")
    call = serializers.SerializerMethodField(help_text=CALL_HELP)
    model_version = serializers.CharField(source="model_version.name")
    model_file_sha256 = serializers.CharField(source="model_version.file_sha256")
    heatmap_url = serializers.SerializerMethodField(help_text="Null when the model gives no heatmap.")
    overlay_url = serializers.SerializerMethodField(help_text="Null when the model gives no heatmap.")
    heatmap_peak = serializers.JSONField(help_text="Row and column in the original image; {} without a heatmap.")
    timings_ms = serializers.JSONField()
    created_at = serializers.DateTimeField()
    model_validation = serializers.SerializerMethodField(
        help_text="Whether the model is validated, its sealed-test figures, and one sentence for people, to show "
        "beside the score."
    )

    def get_score(self, obj) -> float:
        return prediction_output(obj).score

    @extend_schema_field(serializers.ChoiceField(choices=["calibrated_probability", "research_score"]))
    def get_score_kind(self, obj) -> str:
        return prediction_output(obj).score_kind

    @extend_schema_field(serializers.ChoiceField(choices=["flagged", "not_flagged"], allow_null=True))
    def get_call(self, obj) -> str | None:
        return prediction_output(obj).call

    @extend_schema_field(serializers.DictField())
    def get_model_validation(self, obj) -> dict:
        return obj.model_version.validation.as_dict()

    def _url(self, obj, kind: str) -> str:
        path = reverse("api:image_file", kwargs={"pk": obj.image_id, "kind": kind})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_heatmap_url(self, obj) -> str | None:
        return self._url(obj, "heatmap") if obj.has_heatmap else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_overlay_url(self, obj) -> str | None:
        return self._url(obj, "overlay") if obj.has_heatmap else None


class ImageSerializer(serializers.ModelSerializer):
    job_id = serializers.SerializerMethodField()
    job_status = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField()
    preview_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "original_filename", "laterality", "view", "rows", "columns", "bits_stored",
            "photometric_interpretation", "sop_instance_uid", "sha256", "size_bytes", "source_format",
            "job_id", "job_status", "error", "prediction", "preview_url", "created_at",
        ]  # fmt: skip

    def get_job_id(self, obj) -> int | None:
        job = selectors.image_current_job(obj)
        return job.pk if job else None

    def get_job_status(self, obj) -> str | None:
        job = selectors.image_current_job(obj)
        return job.status if job else None

    def get_error(self, obj) -> str:
        job = selectors.image_current_job(obj)
        return job.error_message if job and job.status in ("failed", "waiting") else ""

    def get_prediction(self, obj) -> dict | None:
        prediction = selectors.image_current_prediction(obj, user=self.context["request"].user)
        return PredictionSerializer(prediction, context=self.context).data if prediction else None

    def get_preview_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("api:image_file", kwargs={"pk": obj.pk, "kind": "preview"})
        )


class StudyListSerializer(serializers.ModelSerializer):
    patient_id = serializers.CharField(source="patient.patient_id")
    image_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Study
        fields = [
            "id",
            "patient_id",
            "accession_number",
            "study_date",
            "description",
            "status",
            "image_count",
            "created_at",
        ]


class BreastSerializer(serializers.Serializer):
    """One breast's AI summary: its most suspicious view's output (the maximum over its views)."""

    laterality = serializers.ChoiceField(choices=["R", "L"])
    views = serializers.ListField(child=serializers.CharField())
    image_count = serializers.IntegerField()
    analysed = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True, help_text="The highest score of the breast's views.")
    score_kind = serializers.ChoiceField(
        choices=["calibrated_probability", "research_score"], allow_null=True, help_text=SCORE_KIND_HELP
    )
    operating_point = serializers.FloatField(allow_null=True)
    call = serializers.ChoiceField(choices=["flagged", "not_flagged"], allow_null=True, help_text=CALL_HELP)
    model_validation = serializers.DictField(allow_null=True)


class StudyDetailSerializer(serializers.ModelSerializer):
    patient_id = serializers.CharField(source="patient.patient_id")
    patient_name = serializers.CharField(source="patient.name")
    images = ImageSerializer(many=True)
    breasts = serializers.SerializerMethodField()
    reads = serializers.SerializerMethodField()
    screening_outcome = serializers.SerializerMethodField(
        help_text="Once the study is final, for radiologists and leads: `result` (routine_recall, technical_recall, "
        "recall_for_assessment), `views_to_repeat` (technical recall: view and reason), and `density`: the final "
        "reader density (arbitration's, else both readers', else the denser of the two) with its report wording "
        "and the woman's lay-summary statement in the US MQSA wording (never from an AI estimate); `confirmation`: "
        "null until a lead confirms the result (POST /api/studies/{id}/result/confirm/ with `seen_result`), then "
        "who, when and the letters' ids and references. Null otherwise."
    )

    ai_density = serializers.SerializerMethodField(
        help_text="The active density model's estimate of the study (where this user may see the AI): `status`, "
        "and the model's result (scale birads a-d or mini-mias F/G/D, category, probabilities, per breast, whether "
        "the model is validated and why not). An estimate: the woman's letter uses the readers' density."
    )

    screening = serializers.SerializerMethodField(
        help_text="The screening episode and appointment the images were taken in, and what the mammographer "
        "recorded (symptoms, implants, surgery, images taken, an incomplete exam); null for a study of no "
        "appointment."
    )

    class Meta:
        model = Study
        fields = [
            "id", "patient_id", "patient_name", "accession_number", "study_instance_uid", "study_date",
            "description", "status", "held_reason", "created_at", "images", "breasts", "reads", "screening",
            "screening_outcome", "ai_density",
        ]  # fmt: skip

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_ai_density(self, obj) -> dict | None:
        estimate = study_ai_density(user=self.context["request"].user, study=obj)
        if estimate is None:
            return None
        return {"status": estimate.status, "model": estimate.model_version.name, "error": estimate.error_message,
                **({"result": estimate.result} if estimate.succeeded else {})}  # fmt: skip

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_screening_outcome(self, obj) -> dict | None:
        outcome = screening_outcome_visible_to(user=self.context["request"].user, study=obj)
        if outcome is not None:
            outcome["confirmation"] = result_confirmation_as_dict(obj)
        return outcome

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_screening(self, obj) -> dict | None:
        if obj.appointment_id is None:
            return None
        appointment = obj.appointment
        return {
            "episode": obj.episode_id,
            "appointment": appointment_as_dict(appointment),
            "mammographer_record": record_as_dict(appointment),
        }

    @extend_schema_field(BreastSerializer(many=True))
    def get_breasts(self, obj) -> list[dict]:
        breasts = []
        for breast in selectors.breast_summary(obj, user=self.context["request"].user):
            prediction = breast["prediction"]
            output = prediction_output(prediction) if prediction else None
            breasts.append(
                {
                    "laterality": breast["laterality"],
                    "views": breast["views"],
                    "image_count": breast["image_count"],
                    "analysed": breast["analysed"],
                    **(
                        output.as_dict()
                        if output
                        else dict.fromkeys(("score", "score_kind", "operating_point", "call"))
                    ),
                    "model_validation": prediction.model_version.validation.as_dict() if prediction else None,
                }
            )
        return breasts

    @extend_schema_field(ReadSerializer(many=True))
    def get_reads(self, obj) -> list[dict]:
        """Only the reads this user may see (blinding): empty for roles without reads."""
        return ReadSerializer(reads_visible_to(user=self.context["request"].user, study=obj), many=True).data
