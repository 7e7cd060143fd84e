from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.lockout import SignInLocked, sign_in_failure_check, sign_in_lock_check


class LockoutAuthenticationForm(AuthenticationForm):
    """Django's sign-in form behind the lockout (accounts.lockout): a locked name and address is refused before
    the password is checked; the failure that reaches the limit already says so."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        try:
            sign_in_lock_check(request=self.request, username=username)
            try:
                return super().clean()
            except forms.ValidationError:
                sign_in_failure_check(request=self.request, username=username)
                raise
        except SignInLocked as exc:
            raise forms.ValidationError(str(exc), code="locked") from exc
