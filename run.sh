#!/usr/bin/env bash
# Installs everything and runs the platform on the embedded default: SQLite and Celery's filesystem broker under
# ./var (no PostgreSQL or Redis needed), a real Celery worker beside the web server, the shipped default model
# activated. Set DATABASE_URL / CELERY_BROKER_URL / SECRET_KEY to run against real servers instead.
set -euo pipefail
cd "$(dirname "$0")"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
echo "Installing dependencies (first run takes a few minutes)..."
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

PY=.venv/bin/python
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput --verbosity 0
$PY manage.py install_default_model

if [ "$($PY manage.py shell -c 'from accounts.models import User; print(User.objects.exists())')" = "False" ]; then
  if [ -t 0 ]; then
    echo
    echo "No accounts yet. Create the first one (you choose the password; none is preset)."
    read -r -p "Username: " first_user
    read -r -p "Role [radiologist/lead_radiologist/technologist/auditor/admin] (default radiologist): " first_role
    $PY manage.py adduser "$first_user" --role "${first_role:-radiologist}"
  else
    echo
    echo "No accounts yet. Create one with, for example:"
    echo "  .venv/bin/python manage.py adduser alice --role radiologist     (asks for a password)"
  fi
fi

mkdir -p var/log
echo "Starting the Celery worker (log: var/log/worker.log)..."
# --beat: the worker also runs Celery beat, which sends the stale-job sweep every INFERENCE_SWEEP_SECONDS.
$PY -m celery -A mammo_platform worker --pool solo --loglevel INFO --without-gossip --without-mingle \
  --beat --schedule var/celerybeat-schedule >> var/log/worker.log 2>&1 &
WORKER_PID=$!
trap 'kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null' EXIT INT TERM

echo
echo "Mammography platform: http://$HOST:$PORT/"
echo "Sign in with an account created by 'manage.py adduser USERNAME --role ROLE'."
echo "Research demonstration, not for clinical use. Stop with Ctrl-C."
echo
.venv/bin/gunicorn mammo_platform.wsgi:application --bind "$HOST:$PORT" --workers 2 --threads 4 --timeout 120 \
  --access-logfile - &
WEB_PID=$!
trap 'kill "$WEB_PID" "$WORKER_PID" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
wait "$WEB_PID"
