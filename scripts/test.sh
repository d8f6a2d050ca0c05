#!/usr/bin/env bash
# The whole test suite on PostgreSQL. pytest-django creates and drops the test database itself;
# the server only has to be reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/inboxerr}"
export SECRET_KEY="${SECRET_KEY:-inboxerr-test-key}"

if ! .venv/bin/python - <<'PY'
import os, sys
import psycopg
url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
try:
    psycopg.connect(url, connect_timeout=5).close()
except Exception as exc:
    sys.exit(f"PostgreSQL is not reachable at {url}: {exc}")
PY
then
    echo "Start it with: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2
    exit 1
fi

exec .venv/bin/python -m pytest "$@"
