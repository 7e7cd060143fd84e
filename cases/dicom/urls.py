from django.urls import path

from cases.dicom import pages

app_name = "dicom"
urlpatterns = [
    path("dicom-results/<int:pk>/file/", pages.dicom_result_file, name="result_file"),
    path("dicom-deliveries/<int:pk>/retry/", pages.delivery_retry, name="delivery_retry"),
    path("dicom-results/<int:pk>/retry/", pages.result_retry, name="result_retry"),
]
