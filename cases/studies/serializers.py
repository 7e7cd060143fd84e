from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cases.models import Image, Study
from cases.reading.serializers import ReadSerializer
from cases.reading.worklist import reads_visible_to
from cases.studies import selectors


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
    probability = serializers.FloatField()
    label = serializers.CharField()
    threshold = serializers.FloatField()
    model_version = serializers.CharField(source="model_version.name")
    model_file_sha256 = serializers.CharField(source="model_version.file_sha256")
    heatmap_url = serializers.SerializerMethodField()
    overlay_url = serializers.SerializerMethodField()
    heatmap_peak = serializers.JSONField()
    timings_ms = serializers.JSONField()
    created_at = serializers.DateTimeField()
    model_validation = serializers.SerializerMethodField(
        help_text="Whether the model is validated, its sealed-test figures, and one sentence for people. When it is "
        "not validated, `label` is only the score's side of the threshold: show the probability as a research "
        "score, not as malignant or benign."
    )

    @extend_schema_field(serializers.DictField())
    def get_model_validation(self, obj) -> dict:
        return obj.model_version.validation.as_dict()

    def _url(self, obj, kind: str) -> str:
        path = reverse("api:image_file", kwargs={"pk": obj.image_id, "kind": kind})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_heatmap_url(self, obj) -> str:
        return self._url(obj, "heatmap")

    def get_overlay_url(self, obj) -> str:
        return self._url(obj, "overlay")


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


class StudyDetailSerializer(serializers.ModelSerializer):
    patient_id = serializers.CharField(source="patient.patient_id")
    patient_name = serializers.CharField(source="patient.name")
    images = ImageSerializer(many=True)
    breasts = serializers.SerializerMethodField()
    reads = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = [
            "id", "patient_id", "patient_name", "accession_number", "study_instance_uid", "study_date",
            "description", "status", "created_at", "images", "breasts", "reads",
        ]  # fmt: skip

    def get_breasts(self, obj) -> list[dict]:
        breasts = []
        for breast in selectors.breast_summary(obj, user=self.context["request"].user):
            prediction = breast.pop("prediction")
            breast["model_validation"] = prediction.model_version.validation.as_dict() if prediction else None
            breasts.append(breast)
        return breasts

    @extend_schema_field(ReadSerializer(many=True))
    def get_reads(self, obj) -> list[dict]:
        """Only the reads this user may see (blinding): empty for roles without reads."""
        return ReadSerializer(reads_visible_to(user=self.context["request"].user, study=obj), many=True).data
