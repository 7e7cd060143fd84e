from django.contrib import admin, messages

from accounts.permissions import CapabilityAdminMixin
from accounts.roles import Capability
from inference.models import InferenceJob, ModelVersion, Prediction
from inference.serving.registry import model_version_activate


@admin.register(ModelVersion)
class ModelVersionAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    capability = Capability.MODEL_MANAGE
    allow_change = True  # needed for the activate action; every field is read-only
    list_display = ("name", "backbone", "input_size", "threshold", "is_active", "created_at", "activated_at")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["activate"]

    # No add: models are registered with `manage.py register_model`, which checks that the file loads.

    @admin.action(description="Activate the selected model (exactly one)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to activate.", messages.ERROR)
            return
        version = model_version_activate(model_version=queryset.get())
        self.message_user(request, f"{version.name} is now the active model.", messages.SUCCESS)


@admin.register(InferenceJob)
class InferenceJobAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    capability = Capability.MODEL_MANAGE
    list_display = ("pk", "image", "model_version", "status", "attempts", "created_at", "finished_at")
    list_filter = ("status", "model_version")
    readonly_fields = [f.name for f in InferenceJob._meta.fields]


@admin.register(Prediction)
class PredictionAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    capability = Capability.MODEL_MANAGE
    list_display = ("pk", "image", "model_version", "probability", "label", "created_at")
    list_filter = ("label", "model_version")
    readonly_fields = [f.name for f in Prediction._meta.fields]
