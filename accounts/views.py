from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.forms import ThrottledAuthenticationForm
from accounts.signals import token_issued
from accounts.throttling import (
    LoginThrottled,
    client_address,
    login_failure_record,
    login_success_record,
    login_throttle_check,
)


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


@method_decorator([sensitive_post_parameters("password"), never_cache], name="dispatch")
class TokenObtainView(APIView):
    """Exchange a username and password for an API token (same throttling as the login page)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    serializer_class = TokenRequestSerializer

    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        address = client_address(request)
        try:
            login_throttle_check(username=username, address=address)
        except LoginThrottled as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        user = authenticate(request, username=username, password=serializer.validated_data["password"])
        if user is None:
            login_failure_record(username=username, address=address)
            return Response(
                {"detail": "Unable to sign in with the username and password given."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        login_success_record(username=username, address=address)
        token_issued.send(sender=TokenObtainView, user=user, address=address)
        token, _ = Token.objects.get_or_create(user=user)
        return Response(TokenResponseSerializer({"token": token.key}).data)
