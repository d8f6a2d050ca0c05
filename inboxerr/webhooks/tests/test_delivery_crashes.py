"""A webhook delivery whose worker dies while sending it: the sweeper hands it out again (its
lease ran out), so each run counts as an attempt from the moment it claims the delivery; once
the retry schedule's attempts are used the delivery is failed with the reason instead of being
sent again (inboxerr/crashes.py). The worker is a real process running the deliver task,
killed (SIGKILL) while the receiver holds its request open."""

import os
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from inboxerr.actors import Actor
from inboxerr.tests.processes import ROOT, current_database_url, kill_group, wait_for
from inboxerr.webhooks import services, tasks
from inboxerr.webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class HoldingReceiver:
    """A loopback HTTP server that counts requests and answers none until `release` is set."""

    def __init__(self) -> None:
        self.requests = 0
        self.release = threading.Event()
        self.running = True
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests += 1
                while not receiver.release.wait(0.1):
                    if not receiver.running:
                        return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.running = False
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def holding_receiver():
    receiver = HoldingReceiver()
    yield receiver
    receiver.close()


def start_deliver(delivery_id: int) -> subprocess.Popen:
    """The deliver task in a process of its own, as a worker runs it."""
    env = {**os.environ, "DATABASE_URL": current_database_url(), "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
           "WEBHOOK_RETRY_SCHEDULE_SECONDS": "0,0"}
    code = f"from inboxerr.webhooks import tasks; tasks.deliver({delivery_id})"
    return subprocess.Popen([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_a_delivery_whose_worker_dies_each_time_is_failed_once_its_attempts_are_used(owner, settings, holding_receiver):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [0, 0]  # three attempts in all
    services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner, url=holding_receiver.url)
    with transaction.atomic():
        services.event_emit(event="import.completed", owner_id=owner.pk, payload={"job_id": 7})
    delivery = WebhookDelivery.objects.get()

    for attempt in (1, 2, 3):
        worker = start_deliver(delivery.pk)
        wait_for(lambda: holding_receiver.requests == attempt, what=f"send {attempt} to reach the receiver")
        kill_group(worker)  # mid-request: nothing about this attempt is recorded
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", attempt, "")
        # Its lease runs out (aged here rather than waited for), so the sweeper finds it due.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert tasks.sweep_due_deliveries() == 1

    holding_receiver.release.set()
    tasks.deliver(delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert delivery.last_error == (
        "Worker crashed while delivering this webhook, with all 3 attempts used; last error: none recorded"
    )
    assert holding_receiver.requests == 3  # not sent a fourth time
    assert tasks.sweep_due_deliveries() == 0
