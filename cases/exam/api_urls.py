from django.urls import path

from cases.exam import api

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("studies/", api.StudyListCreateApi.as_view(), name="study_list"),
    path("studies/<int:pk>/", api.StudyDetailApi.as_view(), name="study_detail"),
    path("studies/<int:pk>/images/", api.StudyImagesApi.as_view(), name="study_images"),
    path("images/<int:pk>/<str:kind>/", api.ImageFileApi.as_view(), name="image_file"),
    path("jobs/<int:pk>/retry/", api.JobRetryApi.as_view(), name="job_retry"),
]
