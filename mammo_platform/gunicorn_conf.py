"""gunicorn's settings for the platform, the one copy: run.sh (embedded default) and docker/entrypoint.sh (the Docker
stack) both start `gunicorn -c mammo_platform/gunicorn_conf.py mammo_platform.wsgi:application`. Only what differs
between the two (the address, the proxy's addresses, the heartbeat folder) is given on their command lines, which
take precedence over this file (as does GUNICORN_CMD_ARGS).

Read from the environment:
  WEB_CONCURRENCY   worker processes (default 3). Each holds Django and, while it decodes an upload, up to about
                    MAMMO_MAX_PIXELS x 8 bytes (MAMMO_DECODE_CONCURRENCY decodes at once per process).
  WEB_THREADS       threads per worker process (default 4). Most of a page's time is spent waiting on PostgreSQL,
                    Redis and the disk, which threads overlap (docs/performance-figures.md, "Load").
  GUNICORN_TIMEOUT  seconds a worker may stay silent (one request running) before it is killed (default 120).
  GUNICORN_GRACEFUL_TIMEOUT  seconds running requests get to finish on SIGTERM (default 30; docker/compose.yml
                    gives the container 35 s before it is killed, so keep this below stop_grace_period).
  GUNICORN_MAX_REQUESTS  requests after which a worker process is replaced by a fresh one (default 0 = never;
                    recycling every 2,000 requests cost 12 % of the time under load, docs/performance-figures.md,
                    "Load"): set it to return to the system the memory a large decode left in the allocator's arenas.

Request sizes: gunicorn bounds the request line and the headers (below); it has no setting for the body. The body is
bounded by the application from Content-Length before it is read (MAMMO_MAX_REQUEST_BYTES, default 512 MB,
core.request_limits) and while it streams (MAMMO_MAX_FILE_BYTES per file, cases.studies.uploads); the TLS
proxy in front carries the same total (docker/README.md, client_max_body_size).
"""

from __future__ import annotations

import os


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"gunicorn_conf: {name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"gunicorn_conf: {name} must be at least {minimum}, not {value}")
    return value


wsgi_app = "mammo_platform.wsgi:application"

# Processes x threads. gthread: a worker process serves WEB_THREADS requests at once and keeps idle keep-alive
# connections without tying up a thread (a sync worker serves one request at a time per process).
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", 3, minimum=1)
threads = _int("WEB_THREADS", 4, minimum=1)
# Connections a worker process holds at once (active and keep-alive); beyond it, new ones wait in the listen queue.
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000, minimum=1)
keepalive = _int("GUNICORN_KEEPALIVE", 5, minimum=0)
backlog = 2048

timeout = _int("GUNICORN_TIMEOUT", 120, minimum=1)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30, minimum=1)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0, minimum=0)
max_requests_jitter = max_requests // 10  # workers do not all restart at the same moment

# The request line and headers (gunicorn's own defaults, written out): a longer line, more than 100 header fields or
# a field over 8 KB is answered 400 before Django sees it. Session and CSRF cookies are far below these.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

accesslog = "-"
errorlog = "-"
