"""Webhook test fixtures: operators with the webhooks permissions, a real loopback HTTP
receiver, and an endpoint pointing at it."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inboxerr.actors import Actor
from inboxerr.webhooks import services


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the receiver is on loopback
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [0, 0, 0]
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    return settings


class Receiver:
    """A loopback HTTP server that records every request and answers with queued status codes
    (200 once the queue is empty)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                payload = b"x" * 800 if code >= 500 else b"ok"
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def endpoint(owner, receiver):
    return services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner, url=receiver.url)
