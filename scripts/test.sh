#!/usr/bin/env bash
# The whole test suite on PostgreSQL. pytest-django creates and drops the test database itself;
# the server only has to be reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/inboxerr}"
# A key only the tests use, long enough for a server with DEBUG off (the live-server tests run one).
export SECRET_KEY="${SECRET_KEY:-inboxerr-test-only-secret-key-never-used-in-production-0123456789}"

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

# The admin console tests drive Debian's Chromium: no browser can be downloaded at test time, so
# the system package is installed when it is missing (as root, as CI runs).
CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_PATH" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "Installing Debian's chromium for the browser tests..."
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "Chromium is missing at $CHROMIUM_PATH: install Debian's chromium package (or set CHROMIUM_PATH)." >&2
        exit 1
    fi
fi
export CHROMIUM_PATH

# Two test processes by default (TEST_WORKERS=0 runs in this one), each on its own test database;
# a module stays in one process, so its module-wide servers and browser are set up once.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
