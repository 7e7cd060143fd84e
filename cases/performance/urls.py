from django.urls import path

from cases.performance import views

app_name = "performance"
urlpatterns = [
    path("", views.performance_page, name="page"),
    path("roc.png", views.performance_roc, name="roc"),
]
