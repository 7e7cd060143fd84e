"""Failed sign-in throttling, shared by the login page and the API token endpoint.

Failures are counted per username and per client address in the cache; past the limit, further attempts are
refused (even with the right password) until the lockout window has passed since the last failure.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache


class LoginThrottled(Exception):
    def __init__(self, seconds: int):
        minutes = max(1, round(seconds / 60))
        super().__init__(
            f"Too many failed sign-in attempts. Try again in about {minutes} minute{'s' if minutes != 1 else ''}."
        )


def _keys(*, username: str, address: str) -> tuple[str, str]:
    user_key = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:user:{user_key}", f"login-fail:addr:{address}"


def login_throttle_check(*, username: str, address: str) -> None:
    user_key, addr_key = _keys(username=username, address=address)
    if (cache.get(user_key, 0) >= settings.LOGIN_FAILURE_LIMIT) or (
        cache.get(addr_key, 0) >= settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS
    ):
        raise LoginThrottled(settings.LOGIN_LOCKOUT_SECONDS)


def login_failure_record(*, username: str, address: str) -> None:
    for key in _keys(username=username, address=address):
        cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        cache.touch(key, settings.LOGIN_LOCKOUT_SECONDS)


def login_success_record(*, username: str, address: str) -> None:
    user_key, _ = _keys(username=username, address=address)
    cache.delete(user_key)


def client_address(request) -> str:
    """The client's address. Behind our TLS proxy (BEHIND_TLS_PROXY) REMOTE_ADDR is the proxy's, so the
    rightmost X-Forwarded-For entry is used: the one our proxy appended, which a client cannot forge (entries to
    its left can be). Without the proxy, X-Forwarded-For is ignored."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "") or "unknown"
