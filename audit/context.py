"""Who and from where, for the audit trail.

Services do not take a request; AuditContextMiddleware puts the current request in a context variable for the
duration of each request, and audit_record() reads the signed-in user and the client's address from it when the
caller does not name them. Celery tasks and commands run outside a request and record as the system.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class _RequestContext:
    request: object


_context: ContextVar[_RequestContext | None] = ContextVar("audit_request", default=None)


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _context.set(_RequestContext(request))
        try:
            return self.get_response(request)
        finally:
            _context.reset(token)


def current_request():
    ctx = _context.get()
    return ctx.request if ctx else None
