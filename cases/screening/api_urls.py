from django.urls import path

from cases.screening import api

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("appointments/", api.AppointmentListApi.as_view(), name="appointment_list"),
    path("appointments/<int:pk>/", api.AppointmentDetailApi.as_view(), name="appointment_detail"),
    path("appointments/<int:pk>/status/", api.AppointmentStatusApi.as_view(), name="appointment_status"),
    path("held-studies/", api.HeldStudyListApi.as_view(), name="held_study_list"),
    path("held-studies/<int:pk>/match/", api.HeldStudyMatchApi.as_view(), name="held_study_match"),
    path("held-studies/<int:pk>/release/", api.HeldStudyReleaseApi.as_view(), name="held_study_release"),
]
