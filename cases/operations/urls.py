from django.urls import path

from cases.operations import views

app_name = "operations"
urlpatterns = [
    path("", views.operations_overview, name="overview"),
    path("steps/<int:pk>/retry/", views.outbox_message_retry, name="outbox_retry"),
    path("results/<int:pk>/retry/", views.result_retry, name="result_retry"),
    path("deliveries/<int:pk>/retry/", views.delivery_retry, name="delivery_retry"),
]
