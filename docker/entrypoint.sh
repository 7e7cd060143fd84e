#!/usr/bin/env bash
# Container entry point. First argument:
#   web     wait for PostgreSQL, apply migrations, install the shipped default model, then run gunicorn
#   worker  wait for PostgreSQL and for the migrations (the web container applies them), then run Celery
#   beat    the same waits, then Celery beat: the periodic stale-job sweep (exactly one beat per deployment)
#   listener  the same waits, then the DICOM listener (manage.py dicom_listener)
#   other   run it as given (docker compose run --rm web python manage.py shell)
# Every long-running process is started with exec, so it becomes the container's main process (under the
# init that compose adds) and receives SIGTERM directly: gunicorn and Celery then shut down gracefully.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf '%s entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

refuse_placeholders() {
  if [ -z "${DATABASE_URL:-}" ]; then
    log "DATABASE_URL is not set: the container setup needs PostgreSQL (see docker/env.example)."
    exit 1
  fi
  if [ -z "${SECRET_KEY:-}" ]; then
    log "SECRET_KEY is not set (see docker/env.example for how to generate one)."
    exit 1
  fi
  case "${SECRET_KEY:-}${DATABASE_URL}" in
    *CHANGE_ME*)
      log "SECRET_KEY or DATABASE_URL still contains the CHANGE_ME placeholder: edit docker/.env first."
      exit 1
      ;;
  esac
}

# Waits with Django's own connection (the same DATABASE_URL parsing as the application). With "migrations",
# also waits until no migration is left to apply, so a worker never runs against an older schema.
wait_for_database() {
  python - "$1" <<'PY'
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mammo_platform.settings")
import django

django.setup()
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import DatabaseError

want_migrations = sys.argv[1] == "migrations"
timeout = float(os.environ.get("DB_WAIT_TIMEOUT", "120"))
migration_timeout = float(os.environ.get("MIGRATION_WAIT_TIMEOUT", "900"))
start = time.monotonic()
connection = connections["default"]
said = None
while True:
    try:
        connection.ensure_connection()
        if not want_migrations:
            break
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if not pending:
            break
        reason, limit = f"{len(pending)} migration(s) not applied yet (the web container applies them)", migration_timeout
    except DatabaseError as exc:
        first_line = (str(exc).strip().splitlines() or [repr(exc)])[0]
        reason, limit = f"database not reachable: {first_line}", timeout
    finally:
        connections.close_all()
    if time.monotonic() - start > limit:
        sys.exit(f"entrypoint: gave up after {limit:.0f} s: {reason}")
    if reason != said:
        print(f"entrypoint: waiting: {reason}", file=sys.stderr, flush=True)
        said = reason
    time.sleep(2)
PY
}

role="${1:-web}"

case "$role" in
  web)
    refuse_placeholders
    wait_for_database connection
    log "applying migrations"
    python manage.py migrate --noinput
    log "installing the shipped models: malignancy and density (idempotent)"
    python manage.py install_default_model
    log "starting gunicorn: ${WEB_CONCURRENCY:-3} processes x ${WEB_THREADS:-4} threads"
    # Settings shared with run.sh (worker class, processes, threads, timeouts, request limits): gunicorn_conf.py.
    # Here only what is particular to the container:
    # --forwarded-allow-ips: the TLS proxy's address is not known in advance inside a Docker network; "*" is
    # safe only because port 8000 must be reachable from the proxy alone (compose publishes it on 127.0.0.1).
    # --worker-tmp-dir /dev/shm: the heartbeat file on tmpfs, not on the container's overlay filesystem.
    exec gunicorn -c mammo_platform/gunicorn_conf.py mammo_platform.wsgi:application \
      --bind 0.0.0.0:8000 \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}" \
      --worker-tmp-dir /dev/shm
    ;;
  worker)
    refuse_placeholders
    wait_for_database migrations
    log "starting the Celery worker on queue ${CELERY_QUEUE:-inference}"
    # Default: one process, a threads pool of 2 sharing one loaded model (about 1 GB): while one job decodes and
    # writes files, the other runs the network (manage.py benchmark_inference measures the gain). TensorFlow is
    # imported lazily inside the worker, never in a parent that forks. CELERY_POOL=prefork with
    # CELERY_CONCURRENCY=1 gives one model per pool process instead (memory x processes); then the pool process
    # loads the model before reporting ready, which settings.CELERY_WORKER_PROC_ALIVE_TIMEOUT allows for.
    # Prefetch 1: a busy worker never holds images another worker could take.
    exec celery -A mammo_platform worker \
      --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --pool "${CELERY_POOL:-threads}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" \
      --prefetch-multiplier 1 \
      -Q "${CELERY_QUEUE:-inference}" \
      --max-tasks-per-child "${CELERY_MAX_TASKS_PER_CHILD:-500}"
    ;;
  beat)
    refuse_placeholders
    wait_for_database migrations
    log "starting Celery beat (outbox sweep every ${OUTBOX_SWEEP_SECONDS:-10} s)"
    # The schedule state lives in /tmp: losing it on a restart only means the first sweep runs on schedule.
    # --enable-remote-control: beat answers `inspect ping` as celerybeat@<host>, but only while its scheduler keeps
    # ticking; --max-interval bounds the time between ticks. docker/healthcheck.py beat relies on both.
    exec celery -A mammo_platform beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" --schedule /tmp/celerybeat-schedule \
      --enable-remote-control --max-interval "${CELERY_BEAT_MAX_INTERVAL:-30}"
    ;;
  listener)
    # The DICOM C-STORE/C-ECHO listener (manage.py dicom_listener, configured by DICOM_AE_TITLE, DICOM_PORT and
    # DICOM_ALLOWED_PEERS). Ready for the commented-out `listener` service in compose.yml.
    refuse_placeholders
    wait_for_database migrations
    log "starting the DICOM listener on port ${DICOM_PORT:-11112}"
    exec python manage.py dicom_listener
    ;;
  *)
    exec "$@"
    ;;
esac
