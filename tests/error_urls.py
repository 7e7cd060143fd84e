"""The platform's URLs plus views that fail on purpose (tests/test_error_pages.py uses it as ROOT_URLCONF)."""

from django.core.exceptions import PermissionDenied
from django.urls import path
from rest_framework.views import APIView

from mammo_platform.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401

SECRET = "db-password=hunter2 at /srv/mammo/settings.py"


def page_that_fails(request):
    raise RuntimeError(SECRET)


def api_page_refusing(request):
    raise PermissionDenied("Your role does not allow this (study.read).")


class ApiThatFails(APIView):
    def get(self, request):
        raise RuntimeError(SECRET)


urlpatterns = [
    path("broken/", page_that_fails),
    path("api/broken/", ApiThatFails.as_view()),
    path("api/refusing/", api_page_refusing),
    path("dicomweb/broken/", page_that_fails),
    *urlpatterns,
]
