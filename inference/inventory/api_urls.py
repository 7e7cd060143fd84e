from django.urls import path

from inference.inventory import api

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("models/", api.ModelListApi.as_view(), name="models"),
    path("models/<int:pk>/", api.ModelDetailApi.as_view(), name="model_detail"),
    path("models/<int:pk>/status/", api.ModelStatusApi.as_view(), name="model_status"),
]
