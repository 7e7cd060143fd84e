# Patients, studies and images are deliberately not in the Django admin: the admin role manages users and
# models and has no access to patient images (accounts.roles.MATRIX). Clinical users work in the pages.
from django.contrib import admin

from accounts.permissions import CapabilityAdminMixin
from accounts.roles import Capability
from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    """The audit trail, read-only for auditors: no add, change or delete for anyone (the database refuses them
    too). Ids and names only: nothing here links to studies or images."""

    capability = Capability.AUDIT_VIEW
    list_display = ("id", "created_at", "actor_username", "actor_role", "action", "object_type", "object_id",
                    "study_id", "ip_address")  # fmt: skip
    list_filter = ("action", "actor_role", "created_at")
    search_fields = ("actor_username", "action", "object_id", "=study_id", "details")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    actions = None
    show_full_result_count = False  # no second COUNT(*) over the whole trail on every filtered page
    readonly_fields = tuple(f.name for f in AuditEvent._meta.fields)
