from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.views import TokenObtainView
from cases import api as cases_api
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
    ],
    "api",
)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/", include(api_patterns)),
    path("", include("cases.urls")),
]
