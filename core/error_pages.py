"""What people and API clients see when something goes wrong (handler400/403/404/500 and the CSRF failure view).

Pages get the site's layout with what happened and where to go; API paths get JSON ({"detail": ...}), like the
rest of the API. A 500 shows nothing of the error itself, only a reference that is also written to the log line of
that error, so that support can find it.
"""

from __future__ import annotations

import logging
import uuid

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

# Paths answered in JSON: the REST API and DICOMweb.
API_PATH_PREFIXES = ("/api/", "/dicomweb/")

logger = logging.getLogger(__name__)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


def new_error_reference() -> str:
    return uuid.uuid4().hex[:12]


def _page(request, template: str, status: int, context: dict | None = None) -> HttpResponse:
    return render(request, template, context or {}, status=status)


@requires_csrf_token
def bad_request(request, exception=None):
    if is_api_path(request.path):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return _page(request, "400.html", 400)


@requires_csrf_token
def permission_denied(request, exception=None):
    # The message is the platform's own (capability checks say which right is missing); other text stays generic.
    message = str(exception) if exception is not None and str(exception) else ""
    if is_api_path(request.path):
        return JsonResponse({"detail": message or "You do not have permission to perform this action."}, status=403)
    return _page(request, "403.html", 403, {"message": message})


@requires_csrf_token
def page_not_found(request, exception=None):
    if is_api_path(request.path):
        return JsonResponse({"detail": "Not found."}, status=404)
    return _page(request, "404.html", 404, {"request_path": request.path})


def server_error(request):
    """No request context: the database or the session store may be what failed, and nothing about the user or
    the error belongs on this page."""
    reference = new_error_reference()
    request.error_reference = reference  # read by ErrorReferenceFilter when Django logs this error just after
    if is_api_path(request.path):
        return JsonResponse(
            {"detail": "Internal server error. Quote this reference if you report it.", "reference": reference},
            status=500,
        )
    try:
        body = loader.get_template("500.html").render({"reference": reference})
    except Exception:  # noqa: BLE001  (the error page must not fail in turn)
        logger.exception("The 500 page could not be rendered (reference %s)", reference)
        body = f"<!doctype html><title>Server error</title><h1>Server error</h1><p>Reference {reference}</p>"
    return HttpResponse(body, status=500)


@requires_csrf_token
def csrf_failure(request, reason=""):
    if is_api_path(request.path):
        return JsonResponse({"detail": "CSRF check failed; sign in again or use an API token."}, status=403)
    return _page(request, "403_csrf.html", 403)


class ErrorReferenceFilter(logging.Filter):
    """Adds the reference a 500 page showed to Django's log line of that error (django.request logs it with the
    request, after the error handler ran)."""

    def filter(self, record: logging.LogRecord) -> bool:
        reference = getattr(getattr(record, "request", None), "error_reference", None)
        if reference and "[reference " not in str(record.msg):
            record.msg = f"{record.msg} [reference {reference}]"
        return True
