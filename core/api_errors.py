import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.error_pages import new_error_reference
from core.errors import ApplicationError

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    """DRF's handler plus the domain's ApplicationError (400 with its message and details), and a JSON 500 with a
    reference for anything unexpected (logged with its traceback under that reference; the client sees nothing
    else of it)."""
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=400)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is not None or settings.DEBUG:  # DEBUG: Django's technical page, for the developer
        return response
    set_rollback()
    reference = new_error_reference()
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    if django_request is not None:
        django_request.error_reference = reference  # also on Django's own "Internal Server Error" log line
    logger.error(
        "Unhandled error in %s %s [reference %s]",
        getattr(django_request, "method", "?"),
        getattr(django_request, "path", "?"),
        reference,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return Response(
        {"detail": "Internal server error. Quote this reference if you report it.", "reference": reference},
        status=500,
    )
