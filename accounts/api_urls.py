from django.urls import path

from accounts.views import TokenObtainView

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="token"),
]
