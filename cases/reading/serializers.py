"""Serializers of the reading API. Output serializers are given only reads that came from reads_visible_to."""

from __future__ import annotations

from rest_framework import serializers

from cases.models import BreastAssessment, Density, Outcome, Read, ReadAddendum, TechnicalRecall
from cases.models.reading import Laterality
from cases.reading.forms import BIRADS_NAMES
from cases.reading.services import AssessmentInput
from cases.reading.technical_recall import TechnicalRecallInput
from cases.reading.worklist import SORTS, Queue

# ------------------------------------------------------------------------------------------------------ output


class AssessmentSerializer(serializers.ModelSerializer):
    birads_name = serializers.SerializerMethodField()
    mark_image_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = BreastAssessment
        fields = [
            "laterality", "birads", "birads_name", "recall", "ai_agreement", "override_reason",
            "mark_image_id", "mark_row", "mark_column",
        ]  # fmt: skip

    def get_birads_name(self, obj) -> str:
        return BIRADS_NAMES.get(obj.birads, "")


class AddendumSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username")

    class Meta:
        model = ReadAddendum
        fields = ["id", "author", "text", "created_at"]


class TechnicalRecallSerializer(serializers.ModelSerializer):
    class Meta:
        model = TechnicalRecall
        fields = ["laterality", "view", "reason", "detail"]


class ReadSerializer(serializers.ModelSerializer):
    study_id = serializers.IntegerField()
    reader = serializers.CharField(source="reader.username")
    assessments = AssessmentSerializer(many=True)
    technical_recalls = TechnicalRecallSerializer(many=True)
    addenda = AddendumSerializer(many=True)

    class Meta:
        model = Read
        fields = [
            "id", "study_id", "kind", "status", "reader", "ai_available", "ai_first_shown_at", "ai_reveal",
            "first_impression", "first_impression_at", "recall", "density", "technical_recalls", "comments",
            "claimed_at", "submitted_at", "assessments", "addenda",
        ]  # fmt: skip


class OutcomeSerializer(serializers.ModelSerializer):
    study_id = serializers.IntegerField()
    recorded_by = serializers.CharField(source="recorded_by.username")

    class Meta:
        model = Outcome
        fields = ["id", "study_id", "laterality", "truth", "note", "recorded_by", "recorded_at"]


class MyReadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()


class WorklistRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="study.pk")
    patient_id = serializers.CharField(source="study.patient.patient_id")
    accession_number = serializers.CharField(source="study.accession_number")
    study_date = serializers.DateField(source="study.study_date", allow_null=True)
    status = serializers.CharField(source="study.status")
    created_at = serializers.DateTimeField(source="study.created_at")
    image_count = serializers.IntegerField()
    views = serializers.ListField(child=serializers.CharField())
    ai_suspicion = serializers.FloatField(
        allow_null=True, help_text="Highest AI probability of the study's images; null when none or not shown."
    )
    my_read = MyReadSerializer(allow_null=True, help_text="Your own read of the study, if any.")
    ready_at = serializers.DateTimeField(help_text="When the study became ready for reading.")
    waited = serializers.CharField(help_text='How long it has waited since, e.g. "3 h", "2 d".')
    reads_done = serializers.IntegerField(help_text="Submitted first and second reads (of 2).")
    action = serializers.ChoiceField(choices=["claim", "continue", "arbitrate", "view"])


class WorklistPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    queue = serializers.CharField()
    sort = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Studies per queue.")
    results = WorklistRowSerializer(many=True)


# ------------------------------------------------------------------------------------------------------- input


class WorklistParamsSerializer(serializers.Serializer):
    queue = serializers.ChoiceField(choices=list(Queue.LABELS), required=False)
    sort = serializers.ChoiceField(choices=list(SORTS), required=False, default="oldest")
    search = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)


class AssessmentInputSerializer(serializers.Serializer):
    """Recall and AI agreement follow from BI-RADS and the AI's call (cases.reading.rules): leave them out, or give
    the same; a contradiction is refused with a 400 saying why."""

    laterality = serializers.ChoiceField(choices=Laterality.choices)
    birads = serializers.IntegerField(
        min_value=0, max_value=6, help_text="Screening categories 0, 1, 2, 4, 5 (3 and 6 are refused, with why)."
    )
    recall = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Derived: BI-RADS 0, 4, 5 recall; 1, 2 do not."
    )
    ai_agreement = serializers.ChoiceField(
        choices=BreastAssessment.Agreement.values,
        required=False,
        allow_blank=True,
        default="",
        help_text="Derived from your recall and the AI's call (agree, override, not_shown, not_applicable).",
    )
    override_reason = serializers.CharField(required=False, allow_blank=True, default="")
    mark_image_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    mark_row = serializers.FloatField(required=False, allow_null=True, default=None)
    mark_column = serializers.FloatField(
        required=False, allow_null=True, default=None, help_text="Mark position in the ORIGINAL image's pixels."
    )


class TechnicalRecallInputSerializer(serializers.Serializer):
    laterality = serializers.ChoiceField(choices=Laterality.choices)
    view = serializers.CharField(max_length=16, help_text="As the study's image says: CC, MLO...")
    reason = serializers.ChoiceField(choices=TechnicalRecall.Reason.choices)
    detail = serializers.CharField(required=False, allow_blank=True, default="", max_length=300,
                                   help_text="Required with reason 'other'.")  # fmt: skip


class ReadSubmitSerializer(serializers.Serializer):
    assessments = AssessmentInputSerializer(many=True, allow_empty=False)
    density = serializers.ChoiceField(
        choices=Density.choices, help_text="The exam's breast density, BI-RADS a-d: required in every screening read."
    )
    technical_recalls = TechnicalRecallInputSerializer(
        many=True, required=False, default=list, help_text="Views to be taken again, each with its reason."
    )
    comments = serializers.CharField(required=False, allow_blank=True, default="")

    def assessment_inputs(self) -> list[AssessmentInput]:
        return [AssessmentInput(**item) for item in self.validated_data["assessments"]]

    def technical_recall_inputs(self) -> list[TechnicalRecallInput]:
        return [TechnicalRecallInput(**item) for item in self.validated_data["technical_recalls"]]


class AddendumCreateSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=5000)


class OutcomeCreateSerializer(serializers.Serializer):
    laterality = serializers.ChoiceField(choices=Laterality.choices)
    truth = serializers.ChoiceField(choices=Outcome.Truth.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")
