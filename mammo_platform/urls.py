from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from accounts import api_urls as accounts_api
from accounts.views import AdminLoginView
from cases.dicom import api_urls as dicom_api
from cases.exam import api_urls as studies_api
from cases.letters import api_urls as letters_api
from cases.operations import api_urls as operations_api
from cases.operations.health import healthz, livez
from cases.performance import api_urls as performance_api
from cases.reading import api_urls as reading_api
from cases.screening import api_urls as screening_api
from inference.inventory import api_urls as models_api
from mammo_platform.api_docs import api_docs
from mammo_platform.home import home

# The REST API: each app's api_urls, under one "api" namespace.
api_patterns = (
    [
        *accounts_api.urlpatterns,
        path("schema/", SpectacularAPIView.as_view(), name="schema"),
        path("docs/", api_docs, name="docs"),
        *studies_api.urlpatterns,
        *reading_api.urlpatterns,
        *performance_api.urlpatterns,
        *dicom_api.urlpatterns,
        *operations_api.urlpatterns,
        *models_api.urlpatterns,
        *screening_api.urlpatterns,
        *letters_api.urlpatterns,
    ],
    "api",
)

# The admin signs in through the platform's own login page, so its lockout and audit apply there too; a signed-in
# user whose role does not use the admin gets the 403 page there (not a redirect back to the admin, endlessly).
admin.site.login = AdminLoginView.as_view()

# Error pages with the site's layout, JSON on API paths.
handler400 = "core.error_pages.bad_request"
handler403 = "core.error_pages.permission_denied"
handler404 = "core.error_pages.page_not_found"
handler500 = "core.error_pages.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("livez", livez, name="livez"),
    # Browsers ask for /favicon.ico whatever the page says; the icon is a static file (no login needed).
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True))),
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/", include(api_patterns)),
    path("dicomweb/", include("cases.dicom.dicomweb.urls")),
    path("", include("cases.dicom.urls")),
    path("reading/", include("cases.reading.urls")),
    path("audit/", include("audit.urls")),
    path("performance/", include("cases.performance.urls")),
    path("operations/", include("cases.operations.urls")),
    path("models/", include("inference.inventory.urls")),
    path("clinic/", include("cases.screening.urls")),
    path("letters/", include("cases.letters.urls")),
    path("", include("cases.exam.urls")),
]
