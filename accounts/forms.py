from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.throttling import (
    LoginThrottled,
    client_address,
    login_failure_record,
    login_success_record,
    login_throttle_check,
)


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        try:
            login_throttle_check(username=username, address=address)
        except LoginThrottled as exc:
            raise forms.ValidationError(str(exc), code="throttled") from exc
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_failure_record(username=username, address=address)
            raise
        login_success_record(username=username, address=address)
        return cleaned
