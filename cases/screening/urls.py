from django.urls import path

from cases.screening import pages

app_name = "screening"
urlpatterns = [
    path("", pages.clinic_list, name="clinic"),
    path("appointments/new/", pages.appointment_new, name="appointment_new"),
    path("appointments/<int:pk>/", pages.appointment_detail, name="appointment"),
    path("appointments/<int:pk>/check-in/", pages.appointment_check_in, name="check_in"),
    path("appointments/<int:pk>/outcome/", pages.appointment_outcome, name="outcome"),
    path("appointments/<int:pk>/cancel/", pages.appointment_cancel, name="cancel"),
    path("appointments/<int:pk>/record/history/", pages.record_history, name="record_history"),
    path("appointments/<int:pk>/record/symptoms/", pages.record_symptom_add, name="symptom_add"),
    path(
        "appointments/<int:pk>/record/symptoms/<int:item>/remove/", pages.record_symptom_remove, name="symptom_remove"
    ),  # fmt: skip
    path("appointments/<int:pk>/record/surgery/", pages.record_surgery_add, name="surgery_add"),
    path(
        "appointments/<int:pk>/record/surgery/<int:item>/remove/", pages.record_surgery_remove, name="surgery_remove"
    ),  # fmt: skip
    path("appointments/<int:pk>/record/images/", pages.record_images, name="record_images"),
    path("held/", pages.held_list, name="held"),
    path("held/<int:pk>/match/", pages.held_match, name="held_match"),
    path("held/<int:pk>/release/", pages.held_release, name="held_release"),
]
