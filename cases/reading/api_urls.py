from django.urls import path

from cases.reading import api

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("worklist/", api.WorklistApi.as_view(), name="worklist"),
    path("reading/session/", api.ReadingSessionApi.as_view(), name="reading_session"),
    path("reading/statistics/", api.ReadingStatisticsApi.as_view(), name="reading_statistics"),
    path("studies/<int:pk>/claim/", api.StudyClaimApi.as_view(), name="study_claim"),
    path("studies/<int:pk>/arbitration/", api.StudyArbitrationApi.as_view(), name="study_arbitration"),
    path("studies/<int:pk>/outcomes/", api.StudyOutcomeApi.as_view(), name="study_outcomes"),
    path("reads/<int:pk>/", api.ReadDetailApi.as_view(), name="read_detail"),
    path("reads/<int:pk>/submit/", api.ReadSubmitApi.as_view(), name="read_submit"),
    path("reads/<int:pk>/addenda/", api.ReadAddendumApi.as_view(), name="read_addenda"),
    path("reads/<int:pk>/release/", api.ReadReleaseApi.as_view(), name="read_release"),
]
