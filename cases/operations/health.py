"""Health checks for load balancers, container orchestration and people.

- /livez: this web process answers (liveness: restart it if not).
- /healthz: readiness: the database, the cache and the broker answer (503 if one does not: take this node out of
  the load balancer), and whether analysis workers are alive (reported, "degraded" when none is: the web still
  serves pages, but new images will not be analysed until a worker is back), and the counts of AI result objects
  and deliveries that failed and of steps failed or overdue ("degraded" while any is not zero: /operations/ lists
  them with the reasons).
No login: they reveal states, never data.
"""

from celery import current_app
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:  # noqa: BLE001
        return "unavailable"


def _cache() -> str:
    try:
        cache.set("healthz", "1", 5)
        return "ok" if cache.get("healthz") == "1" else "unavailable"
    except Exception:  # noqa: BLE001
        return "unavailable"


def _broker() -> str:
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:  # noqa: BLE001
        return "unavailable"


def _results() -> dict:
    """Result objects and deliveries that failed, and steps (analyses, results, reports) failed or overdue: any of
    them makes the status "degraded" (the site's IT looks at /operations/)."""
    from cases.dicom.selectors import results_counts

    try:
        return results_counts()
    except Exception:  # noqa: BLE001  (the database check reports the cause)
        return {}


def _workers() -> dict:
    from core.workers import workers_alive

    try:
        alive = workers_alive()
    except Exception:  # noqa: BLE001  (the database check reports the cause)
        return {"alive": None}
    latest = max((w.last_seen for w in alive), default=None)
    return {"alive": len(alive), "last_seen": latest.isoformat() if latest else None}


@login_not_required
@never_cache
def livez(request):
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
def healthz(request):
    checks = {"database": _database(), "cache": _cache(), "broker": _broker()}
    ready = all(value == "ok" for value in checks.values())
    workers = _workers() if checks["database"] == "ok" else {"alive": None}
    results = _results() if checks["database"] == "ok" else {}
    healthy = workers.get("alive") and not any(results.values())
    status = "unavailable" if not ready else ("ok" if healthy else "degraded")
    return JsonResponse(
        {"status": status, **checks, "workers": workers, "results": results}, status=200 if ready else 503
    )
