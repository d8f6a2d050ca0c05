"""The embedded default, end to end: a fresh SQLite file, migrations, the first admin, a real web
server and a real django-q2 worker (ORM broker), as `make run` starts them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url: str, *, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _poll(url: str, token: str, *, until: str, seconds: float = 90) -> dict:
    """GET url until its body's status is `until` (or the time is up); the last body."""
    deadline = time.monotonic() + seconds
    while True:
        _, body = _call(url, token=token)
        if body.get("status") == until or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


@pytest.fixture
def sqlite_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'smoke.sqlite3'}",
        INBOXERR_ADMIN_USER="smokeadmin",
        INBOXERR_ADMIN_PASSWORD="smoke-password-123",
        DEBUG="false",
        EMAIL_URL="dummymail://",
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


# Left as a run whose worker died leaves it, claimed `age` ago, then the minute tick's recovery;
# each in one transaction, which on SQLite keeps the worker's own tick from coming in between.
STUCK_FAN_OUT = """
from datetime import timedelta
from django.db import transaction
from django.utils import timezone
from campaigns.models import Campaign
from campaigns.services import campaigns_fan_out_recover
for age in (timedelta(minutes=10), timedelta(hours=2)):
    with transaction.atomic():
        Campaign.objects.filter(pk="CAMPAIGN_ID").update(
            status="starting", fan_out_attempts=1, fan_out_claimed_at=timezone.now() - age)
        print(len(campaigns_fan_out_recover()["requeued"]))
"""


def test_embedded_default_runs_web_and_worker_on_sqlite(sqlite_env):
    migrate = _manage(sqlite_env, "migrate", "--noinput")
    assert migrate.returncode == 0, migrate.stderr
    boot = _manage(sqlite_env, "bootstrap")
    assert boot.returncode == 0, boot.stderr
    assert "Created superuser 'smokeadmin' with password: smoke-password-123" in boot.stdout
    token_run = _manage(sqlite_env, "create_api_token", "smokeadmin")
    assert token_run.returncode == 0, token_run.stderr
    token = token_run.stdout.strip()
    assert len(token) == 64 and "\n" not in token

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    procs = [
        subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=sqlite_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                         cwd=ROOT, env=sqlite_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        health, status = {}, None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, health = _call(f"{base}/health")
            except OSError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, health
        assert health["database"] == {"ok": True, "vendor": "sqlite"}
        assert health["worker"]["ok"] is True

        assert _call(f"{base}/api/v1/subscribers/lists")[0] == 401
        status, created = _call(
            f"{base}/api/v1/subscribers/", token=token, body={"list": "Smoke", "email": "Smoke@Example.com"}
        )
        assert status == 201, created
        assert created["email"] == "smoke@example.com"
        status, lists = _call(f"{base}/api/v1/subscribers/lists?simple=true", token=token)
        assert status == 200
        assert lists == [{"name": "Smoke", "count": 1}]
        with urllib.request.urlopen(f"{base}/admin/login/", timeout=10) as response:
            assert response.status == 200

        # A campaign end to end on SQLite: fan-out, the worker's dispatcher, completion.
        status, campaign = _call(f"{base}/api/v1/campaigns", token=token, body={
            "name": "Smoke", "channel": "email", "subject": "Hi {{ name|default:'there' }}",
            "message_content": "Hello", "list_names": ["Smoke"],
        })
        assert status == 201, campaign
        status, started = _call(f"{base}/api/v1/campaigns/{campaign['id']}/start", token=token, body={})
        assert status == 202, started
        campaign = _poll(f"{base}/api/v1/campaigns/{campaign['id']}", token, until="completed")
        assert campaign["status"] == "completed", campaign
        assert campaign["counts"]["sent"] == 1, campaign

        # A campaign left `starting` by a fan-out whose worker died: SQLite has no row locks, so the
        # tick waits out the task timeout (Q_TIMEOUT_SECONDS) before it queues the fan-out again.
        status, stuck = _call(f"{base}/api/v1/campaigns", token=token, body={
            "name": "Stuck", "channel": "email", "subject": "Hi", "message_content": "Hello", "list_names": ["Smoke"],
        })
        assert status == 201, stuck
        recover = _manage(sqlite_env, "shell", "--no-imports", "-c", STUCK_FAN_OUT.replace("CAMPAIGN_ID", stuck["id"]))
        assert recover.returncode == 0, recover.stderr
        assert recover.stdout.split() == ["0", "1"], recover.stdout  # not after 10 minutes; after 2 hours
        stuck = _poll(f"{base}/api/v1/campaigns/{stuck['id']}", token, until="completed")
        assert (stuck["status"], stuck["counts"]["sent"], stuck["fan_out_attempts"]) == ("completed", 1, 2), stuck

        # A batch of the batch API on SQLite: stored, published in order by the worker, committed.
        status, stored = _call(f"{base}/api/v1/batch/process", token=token, body={"items": [
            {"request_id": str(i), "channel": "sms", "recipient": f"+1415555010{i}", "content": "Code {{ c }}",
             "variables": {"c": i}} for i in range(3)
        ]})
        assert status == 200 and stored["status"] == "success", stored
        batch_url = f"{base}/api/v1/outbox/batch/{stored['data']['batch_id']}"
        batch = _poll(f"{batch_url}/status", token, until="committed")
        assert batch["status"] == "committed", batch
        status, items = _call(f"{batch_url}/items", token=token)
        assert [(i["request_id"], i["sent"]) for i in items["results"]] == [("0", True), ("1", True), ("2", True)]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
