#!/usr/bin/env bash
# Start Inboxerr on this machine: migrate, first admin, static files, then the web server and one
# django-q2 worker side by side. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG="${DEBUG:-true}"

$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput --verbosity 0
$PY manage.py bootstrap

pids=()
stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT

$PY manage.py qcluster &
pids+=($!)
$PY manage.py runserver "${INBOXERR_BIND:-127.0.0.1:8000}" --noreload &
pids+=($!)

echo
echo "Inboxerr is running: admin http://${INBOXERR_BIND:-127.0.0.1:8000}/admin/  API docs http://${INBOXERR_BIND:-127.0.0.1:8000}/docs"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}"
