"""Container health checks, one per service of docker/compose.yml, each testing what that service does:

  python /app/docker/healthcheck.py web       GET /healthz answers 200: the web server runs and reaches the
                                              database and the cache (Redis)
  python /app/docker/healthcheck.py worker    this worker answers on the broker, consumes CELERY_QUEUE, and runs a
                                              ping task sent to its own queue (so its pool takes and runs tasks)
  python /app/docker/healthcheck.py beat      this beat answers a ping, which Celery beat does only while its
                                              scheduler keeps ticking (celery beat --enable-remote-control)
  python /app/docker/healthcheck.py listener  the DICOM listener answers a C-ECHO (Verification) on DICOM_PORT

Exit status 0 = healthy, 1 = unhealthy with one line saying why (docker inspect shows it). The web check uses the
standard library only; the Celery checks import the platform's Celery app for its broker settings, never Django's
application registry and never TensorFlow.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
TIMEOUT = float(os.environ.get("HEALTHCHECK_TIMEOUT", "10"))


class Unhealthy(Exception):
    pass


def _allowed_host() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        entry = entry.strip()
        if entry and entry != "*":
            return entry.lstrip(".")  # ".example.org" also allows "example.org"
    return "localhost"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def check_web() -> str:
    # Plain HTTP on purpose: /healthz is exempt from the HTTPS redirect. The Host header must be one Django allows.
    url = os.environ.get("HEALTHCHECK_URL", "http://127.0.0.1:8000/healthz")
    request = urllib.request.Request(url, headers={"Host": _allowed_host()})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=TIMEOUT) as response:
            status, body = response.status, response.read(200)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(200)
    except OSError as exc:
        raise Unhealthy(f"{url}: {exc}") from None
    if status != 200:
        raise Unhealthy(f"{url} answered {status}: {body.decode(errors='replace')}")
    return "web answers /healthz"


def _celery_app():
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    from mammo_platform.celery import app

    return app


def check_worker() -> str:
    from celery.utils.nodenames import worker_direct

    app = _celery_app()
    from mammo_platform.celery import HEALTH_PING_FILE, HEALTH_PING_TASK

    node = f"celery@{socket.gethostname()}"
    queue = os.environ.get("CELERY_QUEUE", "inference")
    # Answered by the worker's main process (its consumer), even while both pool threads analyse images.
    replies = app.control.inspect(destination=[node], timeout=TIMEOUT).active_queues() or {}
    if node not in replies:
        raise Unhealthy(f"{node} did not answer on the broker within {TIMEOUT:.0f} s")
    consumed = {entry.get("name") for entry in replies[node]}
    if queue not in consumed:
        raise Unhealthy(f"{node} does not consume the queue {queue!r} (it consumes {sorted(consumed)})")
    # The ping goes through this worker's own queue (settings.CELERY_WORKER_DIRECT), so no other worker can take
    # it, and it expires unrun if this worker cannot take it in time (no pile-up while it is stuck).
    token = secrets.token_hex(16)
    deadline = time.monotonic() + 2 * TIMEOUT
    app.send_task(HEALTH_PING_TASK, kwargs={"token": token}, queue=worker_direct(node), expires=2 * TIMEOUT)
    while time.monotonic() < deadline:
        try:
            if HEALTH_PING_FILE.read_text() == token:
                return f"{node} consumes {queue!r} and ran a ping task"
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise Unhealthy(f"{node} answers but did not run a ping task within {2 * TIMEOUT:.0f} s (pool busy or stuck)")


def check_beat() -> str:
    app = _celery_app()
    node = f"celerybeat@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=TIMEOUT)
    if not any(node in reply for reply in replies):
        raise Unhealthy(f"{node} did not answer a ping within {TIMEOUT:.0f} s (not ticking, or no broker)")
    return f"{node} is ticking"


def check_listener() -> str:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    port = int(os.environ.get("DICOM_PORT", "11112"))
    called = os.environ.get("DICOM_AE_TITLE", "MAMMO_AI")
    ae = AE(ae_title=os.environ.get("DICOM_HEALTHCHECK_AE_TITLE", "HEALTHCHECK"))
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    association = ae.associate("127.0.0.1", port, ae_title=called)
    if not association.is_established:
        raise Unhealthy(f"no association with {called} on port {port} (refused, aborted or not listening)")
    try:
        status = association.send_c_echo()
    finally:
        association.release()
    if not status or status.Status != 0x0000:
        raise Unhealthy(f"C-ECHO to {called} on port {port} answered {status.Status if status else 'nothing'}")
    return f"{called} answers C-ECHO on port {port}"


CHECKS = {"web": check_web, "worker": check_worker, "beat": check_beat, "listener": check_listener}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in CHECKS:
        print(f"usage: healthcheck.py {{{'|'.join(CHECKS)}}}", file=sys.stderr)
        return 2
    try:
        print(CHECKS[argv[1]]())
    except Unhealthy as exc:
        print(f"unhealthy: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001  (any failure of a check is an unhealthy service, said in one line)
        print(f"unhealthy: {type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
