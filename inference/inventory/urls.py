from django.urls import path

from inference.acceptance import views as acceptance
from inference.inventory import views
from inference.monitoring import views as monitoring

app_name = "models"
urlpatterns = [
    path("", views.model_inventory_page, name="inventory"),
    path("import/", views.model_import_page, name="import"),
    path("inventory.csv", views.model_inventory_export, {"fmt": "csv"}, name="export_csv"),
    path("inventory.json", views.model_inventory_export, {"fmt": "json"}, name="export_json"),
    path("<int:pk>/", views.model_detail_page, name="detail"),
    path("<int:pk>/status/", views.model_status_change_page, name="status_change"),
    path("<int:pk>/monitoring/", monitoring.model_monitoring_page, name="monitoring"),
    path("<int:pk>/monitoring/run/", monitoring.model_monitoring_run_page, name="monitoring_run"),
    path("<int:pk>/monitoring.csv", monitoring.model_monitoring_export, {"fmt": "csv"}, name="monitoring_csv"),
    path("<int:pk>/monitoring.json", monitoring.model_monitoring_export, {"fmt": "json"}, name="monitoring_json"),
    path("<int:pk>/stop-rules/", monitoring.stop_rule_create_page, name="stop_rule_create"),
    path("<int:pk>/stop-rules/<int:rule_id>/toggle/", monitoring.stop_rule_toggle_page, name="stop_rule_toggle"),
    path("<int:pk>/resume/", monitoring.model_resume_page, name="resume"),
    path("<int:pk>/acceptance/", acceptance.acceptance_page, name="acceptance"),
    path("<int:pk>/acceptance/protocol/", acceptance.acceptance_protocol_page, name="acceptance_protocol"),
    path(
        "<int:pk>/acceptance/protocols/<int:protocol_id>/compute/",
        acceptance.acceptance_compute_page,
        name="acceptance_compute",
    ),
    path(
        "<int:pk>/acceptance/reports/<int:report_id>/sign-off/",
        acceptance.acceptance_sign_off_page,
        name="acceptance_sign_off",
    ),
    path(
        "<int:pk>/acceptance/reports/<int:report_id>.csv",
        acceptance.acceptance_export,
        {"fmt": "csv"},
        name="acceptance_csv",
    ),
    path(
        "<int:pk>/acceptance/reports/<int:report_id>.json",
        acceptance.acceptance_export,
        {"fmt": "json"},
        name="acceptance_json",
    ),
]
