from django.urls import path

from accounts.views import TokenDetailView, TokenListView, TokenObtainView, TokenRevokeView

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="token"),
    path("auth/token/revoke/", TokenRevokeView.as_view(), name="token_revoke"),
    path("auth/tokens/", TokenListView.as_view(), name="token_list"),
    path("auth/tokens/<str:token_key>/", TokenDetailView.as_view(), name="token_detail"),
]
