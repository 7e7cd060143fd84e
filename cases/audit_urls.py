from django.urls import path

from cases import audit_views

app_name = "audit"
urlpatterns = [
    path("audit/", audit_views.event_list, name="event_list"),
    path("audit/export.csv", audit_views.export, name="export"),
    path("performance/", audit_views.performance_page, name="performance"),
    path("performance/roc.png", audit_views.performance_roc, name="performance_roc"),
]
