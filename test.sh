#!/usr/bin/env bash
# Runs the test suite on this machine against the real PostgreSQL and Redis, with a real Celery worker and a real
# (small) Keras model. Installs what it needs and starts the services when they are down.
# `bash test.sh --fast`: the fast lane, without the browser, docker, worker, model and slow tests (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

# Services: start PostgreSQL and Redis if they are not answering.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p 5432 -q && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
  sleep 1
done

# Browser tests use Debian's chromium (Playwright cannot download its own browser here).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "chromium could not be installed: browser tests will be skipped" >&2
fi

# The Docker Compose smoke test (tests/test_docker_stack.py) needs a Docker engine and Compose. This machine kind
# has neither and cannot reach Docker Hub: the shared stand-ins script beside the repository installs Debian's engine
# and docker-compose, starts dockerd and builds the base images locally (about 1.5 minutes once, under a second when
# all is there: it keeps what exists). Only when this run can include that test: the whole suite, or arguments that
# mention docker. Without the script and without an engine, the test is skipped and says why.
DOCKER_STANDINS=../shared/tools/docker-standins/build.sh
case " $* " in
  *"not docker"*) wants_docker=no ;;
  "  " | *docker*) wants_docker=yes ;;
  *) wants_docker=no ;;
esac
if [ "$wants_docker" = yes ] && [ "${MAMMO_DOCKER_TESTS:-}" != 0 ] && [ -f "$DOCKER_STANDINS" ]; then
  bash "$DOCKER_STANDINS" || echo "Docker could not be set up (see above): the Docker Compose smoke test says why" >&2
fi

# DICOM tests use Debian's Orthanc with its DICOMweb plugin as the hospital's PACS, dciodvfy (dicom3tools) to
# validate the DICOM objects the platform writes, and dcmtk's findscu as a modality reading the worklist; they are
# skipped, with the reason, when these are missing.
if { [ ! -x /usr/sbin/Orthanc ] || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] \
  || ! command -v dciodvfy >/dev/null || ! command -v findscu >/dev/null; } && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb dicom3tools \
    dcmtk >/dev/null) || echo "orthanc/dicom3tools/dcmtk could not be installed: DICOM network tests are skipped" >&2
fi

# A database name of this run's own (pytest-django creates test_<name> and drops it afterwards) and a cache key
# prefix of its own, so that two test runs on one machine never share state.
RUN_ID="$$"
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mammo_$RUN_ID}"
export CELERY_BROKER_URL="${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/14}"
export CACHE_URL="${TEST_CACHE_URL:-redis://127.0.0.1:6379/13}"
export CACHE_KEY_PREFIX="test-$RUN_ID"
export SECRET_KEY="test-only-secret-key"
export MAMMO_VAR_DIR="${MAMMO_VAR_DIR:-$(mktemp -d)}"
export MAMMO_DATA_DIR="${MAMMO_DATA_DIR:-$(cd .. && pwd)/shared/data}"
export TF_CPP_MIN_LOG_LEVEL=2

exec .venv/bin/python -m pytest "$@"
