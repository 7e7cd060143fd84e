from django.urls import path

from cases.reading import views

app_name = "reading"
urlpatterns = [
    path("", views.worklist_page, name="worklist"),
    path("sessions/start/", views.session_start, name="session_start"),
    path("sessions/end/", views.session_end, name="session_end"),
    path("statistics/", views.statistics_page, name="statistics"),
    path("studies/<int:pk>/claim/", views.claim, name="claim"),
    path("studies/<int:pk>/assign/", views.assign, name="assign"),
    path("studies/<int:pk>/arbitrate/", views.arbitrate_page, name="arbitrate"),
    path("studies/<int:pk>/outcomes/", views.outcome_create, name="outcome_create"),
    path("reads/<int:pk>/", views.read_page, name="read"),
    path("reads/<int:pk>/addenda/", views.addendum_create, name="addendum_create"),
    path("reads/<int:pk>/draft/", views.read_draft, name="read_draft"),
    path("reads/<int:pk>/ai-revealed/", views.read_ai_revealed, name="read_ai_revealed"),
    path("reads/<int:pk>/release/", views.release, name="release"),
]
