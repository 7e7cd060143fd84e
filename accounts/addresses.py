"""Which address a request came from: one answer for the sign-in lockout (django-axes) and the audit trail."""

import ipaddress

from django.conf import settings


def client_address(request) -> str | None:
    """The client's IP address, or None when there is no valid one.

    Behind our TLS proxy (BEHIND_TLS_PROXY) REMOTE_ADDR is the proxy's, so the rightmost X-Forwarded-For entry is
    used: the one our proxy appended, which a client cannot forge (entries to its left can be). Without the proxy,
    X-Forwarded-For is ignored. Anything that is not an IP address (a forged or mangled header) counts as unknown
    rather than reaching the lockout tables or the audit trail.
    """
    candidate = request.META.get("REMOTE_ADDR", "")
    if settings.BEHIND_TLS_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            candidate = forwarded[-1]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
