"""Failed sign-in lockout, on django-axes, shared by the login page (and so the admin's) and the API token endpoint.

What is locked is a user name *at one client address* (AXES_LOCKOUT_PARAMETERS = username + ip_address), never the
name everywhere: typing a colleague's name wrongly five times locks only the typist's own address out of that
account. On top of it, one address that fails LOGIN_FAILURE_LIMIT_PER_ADDRESS times over any names is refused
altogether for the cool-off (password spraying from one machine). Failures are the rows of axes' AccessAttempt
table, which administrators see in the admin ("Failed sign-ins") and delete there to lift a lockout.
"""

from __future__ import annotations

import math
from datetime import timedelta

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from accounts.addresses import client_address
from accounts.signals import sign_in_lock_lifted, sign_in_locked, sign_in_refused


class SignInLocked(Exception):
    def __init__(self, seconds: int):
        self.seconds = seconds
        minutes = max(1, math.ceil(seconds / 60))
        super().__init__(
            "Too many failed sign-in attempts for this account from this computer. "
            f"Try again in about {minutes} minute{'s' if minutes != 1 else ''}, or ask an administrator to lift "
            "the lock."
        )


class PairAndAddressHandler(AxesDatabaseHandler):
    """axes' database handler (the name-and-address pair) plus a ceiling per address over all names."""

    def is_locked(self, request, credentials: dict | None = None) -> bool:
        return super().is_locked(request, credentials) or self._address_over_ceiling(request)

    def _address_over_ceiling(self, request) -> bool:
        limit = settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS
        if not limit:
            return False
        failures = _recent(request).filter(ip_address=request.axes_ip_address).aggregate(t=Sum("failures_since_start"))
        return (failures["t"] or 0) >= limit

    def lock_ends_in(self, request, username: str) -> timedelta:
        """Time left of the lock that applies (the later one, when both do)."""
        at_address = _recent(request).filter(ip_address=request.axes_ip_address)
        ends = []
        if super().is_locked(request, {"username": username}):
            ends.append(at_address.filter(username=username).aggregate(t=Max("attempt_time"))["t"])
        if self._address_over_ceiling(request):
            ends.append(at_address.aggregate(t=Max("attempt_time"))["t"])
        latest = max((t for t in ends if t is not None), default=timezone.now())
        return latest + get_cool_off(request) - timezone.now()


def _recent(request) -> QuerySet[AccessAttempt]:
    return AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))


def _handler() -> PairAndAddressHandler:
    return AxesProxyHandler.get_implementation()


def _locked(request, username: str) -> SignInLocked:
    return SignInLocked(max(1, int(_handler().lock_ends_in(request, username).total_seconds())))


def sign_in_lock_check(*, request, username: str) -> None:
    """Before checking a password: raise SignInLocked when this name may not sign in from this address now. The
    refused attempt is announced (and so audited) but not counted: it cannot extend the lock."""
    if AxesProxyHandler.is_allowed(request, {"username": username}):
        return
    sign_in_refused.send(sender=sign_in_lock_check, username=username, address=client_address(request))
    raise _locked(request, username)


def sign_in_failure_check(*, request, username: str) -> None:
    """After a failed password check (which axes has counted): raise SignInLocked, announcing the new lock, when
    this failure was the one that reached a limit."""
    if AxesProxyHandler.is_locked(request, {"username": username}):
        sign_in_locked.send(sender=sign_in_failure_check, username=username, address=client_address(request))
        raise _locked(request, username)


def sign_in_lock_clear(*, request, username: str) -> None:
    """After a successful sign-in: forget this name's failures at this address (the login page gets the same from
    axes' own user_logged_in handler; the token endpoint does not sign a session in, so it calls this)."""
    _handler().reset_user_attempts(request, {"username": username})


@transaction.atomic
def sign_in_lock_lift(*, attempts: QuerySet[AccessAttempt], by) -> int:
    """An administrator deletes failure records, which lifts the lockouts they caused. Each name and address
    lifted is announced (audited) with who lifted it."""
    lifted = list(attempts.values_list("username", "ip_address", "failures_since_start"))
    attempts.delete()
    for username, address, failures in lifted:
        sign_in_lock_lifted.send(
            sender=sign_in_lock_lift, by=by, username=username or "", address=address, attempts=failures
        )
    return len(lifted)


def sign_in_is_locked(*, username: str, address: str | None) -> bool:
    """Whether a name at an address is locked now (for administrators' pages; no request needed)."""
    threshold = timezone.now() - get_cool_off(None)
    recent = AccessAttempt.objects.filter(attempt_time__gte=threshold, ip_address=address)
    pair = recent.filter(username=username).aggregate(total=Sum("failures_since_start"))["total"] or 0
    total = recent.aggregate(total=Sum("failures_since_start"))["total"] or 0
    limit = settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS
    return pair >= settings.AXES_FAILURE_LIMIT or (bool(limit) and total >= limit)
