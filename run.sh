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

# TensorFlow writes two lines in every process that imports it, whatever TF_CPP_MIN_LOG_LEVEL says (they come before
# it is read): absl's note that it logs to stderr before being initialised, and an INFO line that oneDNN is on (it
# stays on: it is what makes the model fast on CPUs). Exactly these lines are dropped from what run.sh shows and
# from the logs; everything else, the platform's lines and TensorFlow's own warnings and errors, passes.
TF_STARTUP_LINES='^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$'
TF_STARTUP_LINES+='|^I[0-9]{4} [0-9:.]+ +[0-9]+ port\.cc:[0-9]+\] oneDNN custom operations are on\.'
# The filter ignores Ctrl-C's SIGINT (the terminal sends it to every process of run.sh): it ends when the process
# it reads from has written its last line, so a child's shutdown lines still reach the terminal and its log.
without_tf_startup() { trap '' INT; grep --line-buffered -v -E "$TF_STARTUP_LINES" || true; }

$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput --verbosity 0
# The shipped models (malignancy, and the two density models), each accepted for research use and the malignancy
# and NYU density models activated when no model of their kind is active or suspended (idempotent).
$PY manage.py install_default_model 2>&1 | without_tf_startup
# No account yet: on a terminal it asks for the first one, otherwise it says how to create it.
$PY manage.py first_account

# Every process started from here on is run.sh's child, listed in CHILDREN. Ctrl-C (the terminal sends SIGINT to
# them all), SIGTERM to run.sh alone, or the web server ending: run.sh sends each child SIGTERM, gives them
# STOP_SECONDS to finish what they are doing, then SIGKILLs whatever is left, so nothing (the DICOM listener's port,
# the worker's beat) outlives run.sh.
CHILDREN=()
STOP_SECONDS="${STOP_SECONDS:-10}"
stop_children() {
  trap - EXIT INT TERM
  [ "${#CHILDREN[@]}" -gt 0 ] || return 0
  kill -TERM "${CHILDREN[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_SECONDS)) pid alive
  while [ "$SECONDS" -lt "$deadline" ]; do
    alive=""
    for pid in "${CHILDREN[@]}"; do kill -0 "$pid" 2>/dev/null && alive="$pid"; done
    [ -n "$alive" ] || break
    sleep 0.2
  done
  kill -KILL "${CHILDREN[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap 'echo; echo "Stopping..."; stop_children; exit 130' INT
trap 'stop_children; exit 143' TERM
trap stop_children EXIT

mkdir -p "$VAR/log"
echo "Starting the Celery worker (log: $VAR/log/worker.log)..."
# --beat: the worker also runs Celery beat, which sends the outbox sweep every OUTBOX_SWEEP_SECONDS (core/outbox.py), as a
# child process of the worker that dies with it (mammo_platform/celery.py), so a crashed worker leaves no scheduler.
# A threads pool of two, as in docker: one model in memory, two images in flight, so that one image's reading,
# preprocessing, heatmap files and rows overlap the other's forward pass (manage.py benchmark_inference).
$PY -m celery -A mammo_platform worker --pool threads --concurrency "${CELERY_CONCURRENCY:-2}" --loglevel INFO \
  --without-gossip --without-mingle \
  --beat --schedule "$VAR/celerybeat-schedule" > >(without_tf_startup >> "$VAR/log/worker.log") 2>&1 &
CHILDREN+=("$!")

# The DICOM listener (C-ECHO / C-STORE SCP): modalities and PACS send exams to it. Its AE title, port and the peers
# allowed to send come from DICOM_AE_TITLE, DICOM_PORT, DICOM_ALLOWED_PEERS (README, "Connecting a hospital").
DICOM_PORT="${DICOM_PORT:-11112}"
# SO_REUSEADDR, as the listener binds: connections of a previous run left in TIME_WAIT do not make the port "in use".
if python3 -c 'import socket as so, sys; s = so.socket(); s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))' \
  "${DICOM_BIND_ADDRESS:-127.0.0.1}" "$DICOM_PORT" 2>/dev/null; then
  echo "Starting the DICOM listener ${DICOM_AE_TITLE:-MAMMO_AI} on port $DICOM_PORT (log: $VAR/log/dicom-listener.log)..."
  DICOM_PORT="$DICOM_PORT" $PY manage.py dicom_listener > >(without_tf_startup >> "$VAR/log/dicom-listener.log") 2>&1 &
  CHILDREN+=("$!")
else
  echo "DICOM port $DICOM_PORT is in use: the DICOM listener is not started (set DICOM_PORT to another port)." >&2
fi

echo
echo "Mammography platform: http://$HOST:$PORT/"
echo "Sign in with an account created by 'manage.py adduser USERNAME --role ROLE'."
echo "Research demonstration, not for clinical use. Stop with Ctrl-C."
echo
# gunicorn's settings (processes, threads, timeouts, request limits) are in mammo_platform/gunicorn_conf.py, shared
# with the Docker stack; WEB_CONCURRENCY and WEB_THREADS change the processes and threads.
.venv/bin/gunicorn -c mammo_platform/gunicorn_conf.py mammo_platform.wsgi:application --bind "$HOST:$PORT" \
  2> >(without_tf_startup >&2) &
WEB_PID=$!
CHILDREN+=("$WEB_PID")
# `wait` returns when the web server ends, or at once when a signal comes (its trap then stops everything).
wait "$WEB_PID"
