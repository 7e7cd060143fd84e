from django.urls import path

from cases.dicom import api

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("studies/<int:pk>/dicom-results/", api.StudyDicomResultsApi.as_view(), name="study_dicom_results"),
    path("dicom-results/<int:pk>/file/", api.DicomResultFileApi.as_view(), name="dicom_result_file"),
    path("dicom-results/<int:pk>/retry/", api.DicomResultRetryApi.as_view(), name="dicom_result_retry"),
    path("dicom-deliveries/<int:pk>/retry/", api.DicomDeliveryRetryApi.as_view(), name="dicom_delivery_retry"),
]
