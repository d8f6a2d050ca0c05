"""A real API server for tests that talk HTTP to it: `manage.py runserver` (Daphne, ASGI, as
`make run` serves) on the test database with DEBUG off, in a process group of its own. Data a test
wants it to see must be committed (transactional_db)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from inboxerr.tests.browser import _free_port, _wait_until_serving
from inboxerr.tests.processes import ROOT, current_database_url, kill_group


@contextmanager
def api_server(log_dir: Path, **env_overrides: str) -> Iterator[str]:
    """Yields the server's base URL (http://127.0.0.1:<port>); its output goes to server.log."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": current_database_url(), "DEBUG": "false", "PYTHONUNBUFFERED": "1",
           "EMAIL_URL": "memorymail://",
           # A contract run sends thousands of calls, many with bad credentials on purpose, from one
           # address: the throttles have their own tests (test_throttling.py).
           "API_THROTTLE_USER": "1000000/min", "API_THROTTLE_ANON": "1000000/min", **env_overrides}
    for name in ("REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    with open(log_dir / "server.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_until_serving(base, server)
            yield base
        finally:
            kill_group(server)
