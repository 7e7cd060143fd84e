from django.contrib import admin
from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import extend_schema
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.addresses import client_address
from accounts.forms import LockoutAuthenticationForm
from accounts.lockout import SignInLocked, sign_in_failure_check, sign_in_lock_check, sign_in_lock_clear
from accounts.tokens import REVOKED_BY_OWNER, token_issue, token_revoke


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LockoutAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        """A refused sign-in is a 400, as every refused form is: the page again, with its error summary."""
        response = super().form_invalid(form)
        response.status_code = 400
        return response


@method_decorator(login_not_required, name="dispatch")
class AdminLoginView(LoginView):
    """The admin site's login (admin.site.login). The admin sends a signed-in user whose role does not use it
    (not is_staff) to its login page; the platform's login would send them straight back (they are signed in):
    an endless redirect. They get the platform's 403 page instead, which says why."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not admin.site.has_permission(request):
            raise PermissionDenied(
                f"The administration site is for administrators and auditors; your role "
                f"({request.user.get_role_display() or 'none'}) does not use it."
            )
        return super().dispatch(request, *args, **kwargs)


class LogoutView(auth_views.LogoutView):
    pass


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField()


class TokenInfoSerializer(serializers.Serializer):
    token_key = serializers.CharField(help_text="The token's first characters: enough to name it, not to use it.")
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField()
    current = serializers.BooleanField(help_text="The token this request was made with.")


@method_decorator([sensitive_post_parameters("password"), never_cache], name="dispatch")
class TokenObtainView(APIView):
    """Exchange a username and password for a new API token that expires (same lockout as the login page)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    serializer_class = TokenRequestSerializer

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer})
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        try:
            sign_in_lock_check(request=request, username=username)
            user = authenticate(request, username=username, password=serializer.validated_data["password"])
            if user is None:
                sign_in_failure_check(request=request, username=username)
                return Response(
                    {"detail": "Unable to sign in with the username and password given."},
                    status=status.HTTP_400_BAD_REQUEST,
                )
        except SignInLocked as exc:
            return Response(
                {"detail": str(exc)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(exc.seconds)},
            )
        sign_in_lock_clear(request=request, username=username)
        instance, token = token_issue(user=user, address=client_address(request))
        return Response(TokenResponseSerializer({"token": token, "expiry": instance.expiry}).data)


def _token_info(token: AuthToken, current: AuthToken | None) -> dict:
    return {
        "token_key": token.token_key,
        "created": token.created,
        "expiry": token.expiry,
        "current": current is not None and token.digest == current.digest,
    }


class TokenListView(APIView):
    """The signed-in user's own API tokens (never the tokens themselves: they are stored only as hashes)."""

    serializer_class = TokenInfoSerializer

    @extend_schema(responses={200: TokenInfoSerializer(many=True)})
    def get(self, request):
        current = request.auth if isinstance(request.auth, AuthToken) else None
        tokens = AuthToken.objects.filter(user=request.user).order_by("-created")
        return Response(TokenInfoSerializer([_token_info(t, current) for t in tokens], many=True).data)


class TokenDetailView(APIView):
    """Revoke one of your own tokens by its key (for example one left on another computer)."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, token_key: str):
        token = get_object_or_404(AuthToken.objects.filter(user=request.user), token_key=token_key)
        token_revoke(token=token, by=request.user, reason=REVOKED_BY_OWNER, address=client_address(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRevokeView(APIView):
    """Revoke the token this request is made with (the API's sign-out)."""

    authentication_classes = [TokenAuthentication]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        token_revoke(token=request.auth, by=request.user, reason=REVOKED_BY_OWNER, address=client_address(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
