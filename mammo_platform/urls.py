from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.views import LoginView, TokenObtainView
from cases import api as cases_api
from cases import reading_api
from mammo_platform.health import healthz
from mammo_platform.home import home

api_patterns = (
    [
        path("auth/token/", TokenObtainView.as_view(), name="token"),
        path("schema/", SpectacularAPIView.as_view(), name="schema"),
        path("studies/", cases_api.StudyListCreateApi.as_view(), name="study_list"),
        path("studies/<int:pk>/", cases_api.StudyDetailApi.as_view(), name="study_detail"),
        path("images/<int:pk>/<str:kind>/", cases_api.ImageFileApi.as_view(), name="image_file"),
        path("jobs/<int:pk>/retry/", cases_api.JobRetryApi.as_view(), name="job_retry"),
        path("worklist/", reading_api.WorklistApi.as_view(), name="worklist"),
        path("studies/<int:pk>/claim/", reading_api.StudyClaimApi.as_view(), name="study_claim"),
        path("studies/<int:pk>/arbitration/", reading_api.StudyArbitrationApi.as_view(), name="study_arbitration"),
        path("studies/<int:pk>/outcomes/", reading_api.StudyOutcomeApi.as_view(), name="study_outcomes"),
        path("reads/<int:pk>/", reading_api.ReadDetailApi.as_view(), name="read_detail"),
        path("reads/<int:pk>/submit/", reading_api.ReadSubmitApi.as_view(), name="read_submit"),
        path("reads/<int:pk>/addenda/", reading_api.ReadAddendumApi.as_view(), name="read_addenda"),
    ],
    "api",
)

# The admin signs in through the platform's own login page, so its throttling and audit apply there too.
admin.site.login = LoginView.as_view()

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/", include(api_patterns)),
    path("reading/", include("cases.reading_urls")),
    path("", include("cases.audit_urls")),
    path("", include("cases.urls")),
]
