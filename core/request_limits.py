"""Refuse a request whose body is larger than MAMMO_MAX_REQUEST_BYTES from its Content-Length header, before a
byte of the body is read. (A body without a length is stopped while it streams: cases.studies.uploads.) The TLS
proxy carries the same limit (docker/README.md, client_max_body_size); gunicorn has no body limit of its own and
bounds the request line and headers (mammo_platform/gunicorn_conf.py)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from core.error_pages import is_api_path


def too_large_response(request) -> HttpResponse:
    limit_mb = settings.MAMMO_MAX_REQUEST_BYTES // (1024 * 1024)
    detail = (
        f"The request is larger than the {limit_mb} MB the platform accepts at once. "
        f"Send fewer files per request (each file at most {settings.MAMMO_MAX_FILE_BYTES // (1024 * 1024)} MB)."
    )
    if is_api_path(request.path):
        return JsonResponse({"detail": detail}, status=413)
    body = render_to_string("413.html", {"detail": detail}, request=request)
    return HttpResponse(body, status=413)


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAMMO_MAX_REQUEST_BYTES:
            response = too_large_response(request)
            # The body is not read: close the connection rather than leave it for the next request to trip over.
            response["Connection"] = "close"
            return response
        return self.get_response(request)
