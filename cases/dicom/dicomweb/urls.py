"""DICOMweb URLs (PS3.18 resource paths), mounted at /dicomweb/."""

from django.urls import path

from cases.dicom.dicomweb.views import views

app_name = "dicomweb"
v = views()

urlpatterns = [
    path("studies", v["studies"], name="studies"),
    path("studies/<str:study>", v["retrieve"], name="study"),
    path("studies/<str:study>/metadata", v["metadata"], name="study-metadata"),
    path("studies/<str:study>/series", v["series"], name="series"),
    path("studies/<str:study>/instances", v["instances"], name="study-instances"),
    path("studies/<str:study>/series/<str:series>", v["retrieve"], name="series-retrieve"),
    path("studies/<str:study>/series/<str:series>/metadata", v["metadata"], name="series-metadata"),
    path("studies/<str:study>/series/<str:series>/instances", v["instances"], name="series-instances"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>", v["retrieve"], name="instance"),
    path(
        "studies/<str:study>/series/<str:series>/instances/<str:instance>/metadata",
        v["metadata"],
        name="instance-metadata",
    ),
]
