from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from accounts.permissions import CapabilityAdminMixin
from accounts.roles import Capability
from core.errors import ApplicationError
from inference.lifecycle import model_version_activate
from inference.models import InferenceJob, ModelVersion, Prediction


@admin.register(ModelVersion)
class ModelVersionAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    capability = Capability.MODEL_MANAGE
    allow_change = True  # needed for the activate action; every field is read-only
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["activate"]

    # No add: models come in through the import page or `manage.py import_model` (register_model for the platform's
    # own Keras models), which check that the file works; statuses change on the inventory page (/models/).

    list_display = ("name", "kind", "runtime", "status", "threshold", "validation_state", "is_active", "created_at")
    list_filter = ("kind", "runtime", "status")

    @admin.display(description="Validation")
    def validation_state(self, obj: ModelVersion) -> str:
        return obj.validation.short

    @admin.action(description="Activate the selected model (exactly one)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to activate.", messages.ERROR)
            return None
        version = queryset.get()
        confirmed = request.POST.get("confirm_unvalidated") == "yes"
        if not version.validation.validated and not confirmed:
            # Ask first: say why the model is not validated and what activating it means.
            context = {
                **self.admin_site.each_context(request),
                "title": "Activate a model that is not validated?",
                "version": version,
                "validation": version.validation,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/inference/modelversion/activate_confirm.html", context)
        try:
            model_version_activate(model_version=version, confirm_unvalidated=confirmed, actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return None
        self.message_user(
            request, f"{version.name} is now the active {version.get_kind_display().lower()} model.", messages.SUCCESS
        )
        return None


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
