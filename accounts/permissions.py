"""Access checks for pages and the API, both backed by accounts.roles.role_can."""

from functools import wraps

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.roles import Capability, role_can


def capability_required(capability: Capability):
    """Page decorator: 403 for a signed-in user whose role lacks the capability.

    Signed-out users never get here: the login-required middleware sends them to the login page first.
    """

    def decorator(view_func):
        @wraps(view_func)
        def wrapper(request, *args, **kwargs):
            if not role_can(request.user, capability):
                raise PermissionDenied(f"Your role does not allow this ({capability}).")
            return view_func(request, *args, **kwargs)

        return wrapper

    return decorator


def HasCapability(capability: Capability) -> type[BasePermission]:  # noqa: N802  (used like a class)
    """DRF permission class factory: `permission_classes = [HasCapability(Capability.STUDY_VIEW)]`."""

    class _HasCapability(BasePermission):
        message = f"Your role does not allow this ({capability})."

        def has_permission(self, request, view) -> bool:
            return role_can(request.user, capability)

    _HasCapability.__name__ = f"Has_{capability.replace('.', '_')}"
    return _HasCapability


class CapabilityAdminMixin:
    """Django admin access from the same matrix: a ModelAdmin names the capability it needs."""

    capability: Capability
    allow_add = False
    allow_change = False
    allow_delete = False

    def has_module_permission(self, request) -> bool:
        return role_can(request.user, self.capability)

    def has_view_permission(self, request, obj=None) -> bool:
        return role_can(request.user, self.capability)

    def has_add_permission(self, request, *args) -> bool:
        return self.allow_add and role_can(request.user, self.capability)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.allow_change and role_can(request.user, self.capability)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.allow_delete and role_can(request.user, self.capability)
