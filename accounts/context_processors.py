from accounts.roles import Capability, role_can


def capabilities(request):
    """`can.study_read`, `can.audit_view`, ... for templates (navigation and buttons only; views check again)."""
    user = getattr(request, "user", None)
    return {"can": {c.name.lower(): role_can(user, c) for c in Capability}}
