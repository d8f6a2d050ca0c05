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

# Say where to go once the server answers, not before.
BASE="http://${INBOXERR_BIND:-127.0.0.1:8000}"
for _ in $(seq 120); do
    $PY -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$BASE/admin/login/" 2>/dev/null && break
    sleep 0.5
done
echo
echo "Inboxerr is running: admin $BASE/admin/  API docs $BASE/docs"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}"
