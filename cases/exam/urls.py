from django.urls import path

from cases.exam import pages as views

app_name = "cases"
urlpatterns = [
    path("studies/", views.study_list, name="study_list"),
    path("studies/new/", views.study_create, name="study_create"),
    path("studies/<int:pk>/", views.study_detail, name="study_detail"),
    path("studies/<int:pk>/status.json", views.study_status, name="study_status"),
    path("studies/<int:pk>/images/", views.study_add_images, name="study_add_images"),
    path("images/<int:pk>/", views.image_detail, name="image_detail"),
    path("images/<int:pk>/<str:kind>/", views.image_file, name="image_file"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job_retry"),
]
