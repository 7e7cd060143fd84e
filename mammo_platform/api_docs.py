"""/api/docs/: the API's interactive documentation (Swagger UI) for people signed in to the site, drawn from the
OpenAPI schema at /api/schema/. Swagger UI's files come from drf-spectacular-sidecar and are served by the platform
itself (no CDN: hospital networks are closed); the page has no inline script or style (the strict
Content-Security-Policy applies): templates/api/docs.html and mammo_platform/static/api_docs.js."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET


# /api/ paths are left to REST framework's own authentication (accounts.middleware); this one is a page, so it
# asks for the site's sign-in explicitly. Its requests ("Try it out") run with the signed-in user's session and role.
@login_required
@require_GET
def api_docs(request):
    return render(request, "api/docs.html")
