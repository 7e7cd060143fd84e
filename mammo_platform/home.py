from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse

from accounts.roles import Capability, role_can

# Where each role starts: the first page in this list that the user's role may open.
START_PAGES = [
    (Capability.STUDY_READ, "reading:worklist"),
    (Capability.APPOINTMENT_ATTEND, "screening:clinic"),  # the mammographer: today's clinic
    (Capability.STUDY_VIEW, "cases:study_list"),
    (Capability.AUDIT_VIEW, "audit:event_list"),
    (Capability.USER_MANAGE, "admin:index"),
]


def home(request):
    for capability, name in START_PAGES:
        if role_can(request.user, capability):
            try:
                return redirect(reverse(name))
            except NoReverseMatch:
                continue
    from django.core.exceptions import PermissionDenied

    raise PermissionDenied("Your account has no role with access to any page; ask an administrator.")
