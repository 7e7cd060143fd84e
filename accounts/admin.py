from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils import timezone
from knox.models import AuthToken

from accounts.lockout import sign_in_is_locked, sign_in_lock_lift
from accounts.models import ApiToken, FailedSignIn, User
from accounts.permissions import CapabilityAdminMixin
from accounts.roles import Capability
from accounts.tokens import REVOKED_BY_ADMIN, token_revoke

# knox registers its model with an admin of its own (Django's model permissions, which no role here has, and the
# power to mint tokens for anyone); administrators manage tokens through ApiTokenAdmin below instead.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


@admin.register(User)
class UserAdmin(CapabilityAdminMixin, DjangoUserAdmin):
    capability = Capability.USER_MANAGE
    allow_add = allow_change = True
    fieldsets = DjangoUserAdmin.fieldsets + (("Role", {"fields": ("role",)}),)
    add_fieldsets = DjangoUserAdmin.add_fieldsets + (("Role", {"fields": ("role",)}),)
    list_display = ("username", "first_name", "last_name", "role", "is_active", "last_login")
    # Set by signing in, not by hand; and Django's split date-time inputs for them have no labels (axe-core "label").
    readonly_fields = ("last_login", "date_joined")
    list_filter = ("role", "is_active")


@admin.register(ApiToken)
class ApiTokenAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    """Every user's API tokens (their first characters, never the token: only a hash is stored). Deleting one
    revokes it, audited as revoked by this administrator."""

    capability = Capability.USER_MANAGE
    allow_delete = True
    list_display = ("token_key", "user", "created", "expiry", "active")
    list_filter = ("created", "expiry")
    search_fields = ("token_key", "user__username", "user__last_name")
    fields = ("token_key", "user", "created", "expiry")
    readonly_fields = fields
    ordering = ("-created",)
    list_select_related = ("user",)
    actions = ["revoke"]

    @admin.display(boolean=True, description="active")
    def active(self, token: ApiToken) -> bool:
        return token.expiry is None or token.expiry > timezone.now()

    @admin.action(description="Revoke the selected API tokens", permissions=["delete"])
    def revoke(self, request, queryset):
        tokens = list(queryset.select_related("user"))
        for token in tokens:
            token_revoke(token=token, by=request.user, reason=REVOKED_BY_ADMIN)
        self.message_user(request, f"Revoked {len(tokens)} token(s).", messages.SUCCESS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "revoke" says what it does, and audits
        return actions

    def delete_model(self, request, obj):
        token_revoke(token=obj, by=request.user, reason=REVOKED_BY_ADMIN)

    def delete_queryset(self, request, queryset):
        for token in list(queryset.select_related("user")):
            token_revoke(token=token, by=request.user, reason=REVOKED_BY_ADMIN)


@admin.register(FailedSignIn)
class FailedSignInAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    """Failed sign-ins still counting towards a lockout (one row per name, address and browser). Deleting rows
    lifts the lockouts they caused, audited as lifted by this administrator."""

    capability = Capability.USER_MANAGE
    allow_delete = True
    list_display = ("username", "ip_address", "failures_since_start", "attempt_time", "locked_now", "user_agent")
    list_filter = ("attempt_time",)
    search_fields = ("username", "ip_address")
    fields = ("username", "ip_address", "failures_since_start", "attempt_time", "path_info", "user_agent")
    readonly_fields = fields
    ordering = ("-attempt_time",)
    actions = ["lift_lockout"]

    @admin.display(boolean=True, description="locked now")
    def locked_now(self, attempt: FailedSignIn) -> bool:
        return sign_in_is_locked(username=attempt.username or "", address=attempt.ip_address)

    @admin.action(description="Lift the lockout (forget the selected failures)", permissions=["delete"])
    def lift_lockout(self, request, queryset):
        lifted = sign_in_lock_lift(attempts=queryset, by=request.user)
        self.message_user(request, f"Lifted {lifted} failure record(s).", messages.SUCCESS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        sign_in_lock_lift(attempts=FailedSignIn.objects.filter(pk=obj.pk), by=request.user)

    def delete_queryset(self, request, queryset):
        sign_in_lock_lift(attempts=queryset, by=request.user)
