from django.urls import path

from cases.operations import views

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("operations/", views.OperationsApi.as_view(), name="operations"),
    path("operations/steps/<int:pk>/retry/", views.OutboxRetryApi.as_view(), name="outbox_retry"),
]
