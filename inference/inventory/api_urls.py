from django.urls import path

from inference.acceptance import api as acceptance
from inference.inventory import api
from inference.monitoring import api as monitoring

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("models/", api.ModelListApi.as_view(), name="models"),
    path("models/<int:pk>/", api.ModelDetailApi.as_view(), name="model_detail"),
    path("models/<int:pk>/status/", api.ModelStatusApi.as_view(), name="model_status"),
    path("models/<int:pk>/monitoring/", monitoring.ModelMonitoringApi.as_view(), name="model_monitoring"),
    path("models/<int:pk>/monitoring/run/", monitoring.ModelMonitoringRunApi.as_view(), name="model_monitoring_run"),
    path("models/<int:pk>/resume/", monitoring.ModelResumeApi.as_view(), name="model_resume"),
    path("models/stop-rules/", monitoring.StopRuleListApi.as_view(), name="stop_rules"),
    path("models/alerts/", monitoring.AlertListApi.as_view(), name="model_alerts"),
    path("models/<int:pk>/acceptance/", acceptance.AcceptanceApi.as_view(), name="model_acceptance"),
    path(
        "models/<int:pk>/acceptance/protocols/",
        acceptance.AcceptanceProtocolApi.as_view(),
        name="model_acceptance_protocols",
    ),
    path(
        "models/<int:pk>/acceptance/protocols/<int:protocol_id>/reports/",
        acceptance.AcceptanceComputeApi.as_view(),
        name="model_acceptance_compute",
    ),
    path(
        "models/<int:pk>/acceptance/reports/<int:report_id>/",
        acceptance.AcceptanceReportApi.as_view(),
        name="model_acceptance_report",
    ),
    path(
        "models/<int:pk>/acceptance/reports/<int:report_id>/sign-off/",
        acceptance.AcceptanceSignOffApi.as_view(),
        name="model_acceptance_sign_off",
    ),
]
