#!/usr/bin/env bash
# Installs everything and runs the platform on the embedded default: SQLite and Celery's filesystem broker under
# ./var (no PostgreSQL or Redis needed), a real Celery worker beside the web server, the shipped default model
# activated. Set DATABASE_URL / CELERY_BROKER_URL / SECRET_KEY to run against real servers instead.
set -euo pipefail
cd "$(dirname "$0")"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
VAR="${MAMMO_VAR_DIR:-var}"  # the embedded database, broker, media, logs (settings read the same variable)
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# The port first: nothing is installed or started when the address is taken.
if ! python3 - "$HOST" "$PORT" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
    try:
        sock.bind((host, port))
    except OSError:
        sys.exit(1)
PY
then
  echo "Port $PORT on $HOST is already in use (another copy of the platform, or another program)." >&2
  echo "Start on another port, for example:  PORT=$((PORT + 1)) bash run.sh" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
echo "Installing dependencies (first run takes a few minutes)..."
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

PY=.venv/bin/python
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput --verbosity 0
$PY manage.py install_default_model
# No account yet: on a terminal it asks for the first one, otherwise it says how to create it.
$PY manage.py first_account

mkdir -p "$VAR/log"
echo "Starting the Celery worker (log: $VAR/log/worker.log)..."
# --beat: the worker also runs Celery beat, which sends the outbox sweep every OUTBOX_SWEEP_SECONDS (core/outbox.py).
# A threads pool of two, as in docker: one model in memory, two images in flight, so that one image's reading,
# preprocessing, heatmap files and rows overlap the other's forward pass (manage.py benchmark_inference).
$PY -m celery -A mammo_platform worker --pool threads --concurrency "${CELERY_CONCURRENCY:-2}" --loglevel INFO \
  --without-gossip --without-mingle \
  --beat --schedule "$VAR/celerybeat-schedule" >> "$VAR/log/worker.log" 2>&1 &
WORKER_PID=$!
trap 'kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null' EXIT INT TERM

# The DICOM listener (C-ECHO / C-STORE SCP): modalities and PACS send exams to it. Its AE title, port and the peers
# allowed to send come from DICOM_AE_TITLE, DICOM_PORT, DICOM_ALLOWED_PEERS (README, "Connecting a hospital").
DICOM_PORT="${DICOM_PORT:-11112}"
LISTENER_PID=""
if python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], int(sys.argv[2])))' \
  "${DICOM_BIND_ADDRESS:-127.0.0.1}" "$DICOM_PORT" 2>/dev/null; then
  echo "Starting the DICOM listener ${DICOM_AE_TITLE:-MAMMO_AI} on port $DICOM_PORT (log: $VAR/log/dicom-listener.log)..."
  DICOM_PORT="$DICOM_PORT" $PY manage.py dicom_listener >> "$VAR/log/dicom-listener.log" 2>&1 &
  LISTENER_PID=$!
else
  echo "DICOM port $DICOM_PORT is in use: the DICOM listener is not started (set DICOM_PORT to another port)." >&2
fi
trap 'kill "$WORKER_PID" $LISTENER_PID 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

echo
echo "Mammography platform: http://$HOST:$PORT/"
echo "Sign in with an account created by 'manage.py adduser USERNAME --role ROLE'."
echo "Research demonstration, not for clinical use. Stop with Ctrl-C."
echo
# gunicorn's settings (processes, threads, timeouts, request limits) are in mammo_platform/gunicorn_conf.py, shared
# with the Docker stack; WEB_CONCURRENCY and WEB_THREADS change the processes and threads.
.venv/bin/gunicorn -c mammo_platform/gunicorn_conf.py mammo_platform.wsgi:application --bind "$HOST:$PORT" &
WEB_PID=$!
trap 'kill "$WEB_PID" "$WORKER_PID" $LISTENER_PID 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
wait "$WEB_PID"
