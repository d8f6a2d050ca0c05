"""/ws/jobs/<id>/: a WebSocket client follows an import run by a real qcluster worker."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from imports.tests.helpers import import_file
from inboxerr.progress import CLOSE_NOT_FOUND, CLOSE_THROTTLED, CLOSE_UNAUTHENTICATED, JobProgressConsumer
from inboxerr.tests.processes import kill_group, start_qcluster
from inboxerr.tests.websockets import handshake

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(user, job_id: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(JobProgressConsumer.as_asgi(), f"/ws/jobs/{job_id}/")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"args": (), "kwargs": {"job_id": job_id}}
    return communicator


async def _follow(communicator: WebsocketCommunicator) -> list[dict]:
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    messages = []
    while True:
        message = await communicator.receive_json_from(timeout=60)
        messages.append(message)
        if message["status"] not in ("pending", "processing", "stuck"):
            break
    await communicator.disconnect()
    return messages


@pytest.mark.slow
def test_websocket_client_receives_progress_of_an_import_run_by_a_real_worker(owner, tmp_path, settings):
    settings.IMPORT_DIR = tmp_path / "imports"
    settings.PROGRESS_POLL_SECONDS = 0.2
    csv = tmp_path / "big.csv"
    csv.write_text("email,name\n" + "".join(f"p{i}@x.io,P{i}\n" for i in range(40_000)))
    job = import_file(owner, csv)
    worker = start_qcluster(Q_WORKERS="1", IMPORT_DIR=str(settings.IMPORT_DIR), IMPORT_CHUNK_ROWS="2000")
    try:
        messages = async_to_sync(_follow)(_communicator(owner, str(job.pk)))
    finally:
        kill_group(worker)
    assert messages[-1]["status"] == "completed" and messages[-1]["kind"] == "import"
    assert messages[-1]["progress"] == 100.0
    progress = [m["progress"] for m in messages]
    assert progress == sorted(progress) and len(messages) >= 3  # intermediate progress was pushed


def test_outsider_and_anonymous_are_refused(owner, outsider, tmp_path, settings):
    from django.contrib.auth.models import AnonymousUser

    settings.IMPORT_DIR = tmp_path / "imports"
    csv = tmp_path / "small.csv"
    csv.write_text("email\na@x.io\n")
    job = import_file(owner, csv)

    async def attempt(user):
        communicator = _communicator(user, str(job.pk))
        connected, code = await communicator.connect(timeout=10)
        return connected, code

    assert async_to_sync(attempt)(outsider) == (False, CLOSE_NOT_FOUND)
    assert async_to_sync(attempt)(AnonymousUser()) == (False, CLOSE_UNAUTHENTICATED)


# --- API clients: a token in the handshake, through the whole ASGI application ------------------


def _token_for(user) -> str:
    from inboxerr.accounts import api_token_create
    from inboxerr.actors import Actor

    return api_token_create(actor=Actor(user=user, source="command"), username=user.username)[1]


@pytest.fixture
def small_job(owner, tmp_path, settings):
    settings.IMPORT_DIR = tmp_path / "imports"
    csv = tmp_path / "small.csv"
    csv.write_text("email\na@x.io\n")
    return import_file(owner, csv)


def test_an_api_client_follows_a_job_with_its_token_and_no_origin(owner, small_job):
    headers = [(b"authorization", f"Token {_token_for(owner)}".encode())]
    connected, _, first = handshake(f"/ws/jobs/{small_job.pk}/", headers)
    assert connected
    assert (first["id"], first["kind"], first["status"]) == (str(small_job.pk), "import", "pending")


def test_the_task_monitor_address_is_the_same_stream(owner, small_job):
    headers = [(b"authorization", f"Token {_token_for(owner)}".encode())]
    for path in (f"/webhooks/task-monitor/{small_job.pk}", f"/api/v1/webhooks/task-monitor/{small_job.pk}"):
        connected, _, first = handshake(path, headers)
        assert connected, path
        assert first["id"] == str(small_job.pk)


def test_a_token_sees_only_its_owners_jobs(outsider, small_job):
    headers = [(b"authorization", f"Token {_token_for(outsider)}".encode())]
    assert handshake(f"/ws/jobs/{small_job.pk}/", headers)[:2] == (False, CLOSE_NOT_FOUND)


def test_a_wrong_expired_or_malformed_token_is_refused(owner, small_job):
    from knox.models import AuthToken

    token = _token_for(owner)
    AuthToken.objects.filter(user=owner).update(expiry=timezone.now() - timedelta(seconds=1))
    for value in (f"Token {token}", "Token not-a-token", "Bearer abc", "Token", f"Basic {token}"):
        refused = handshake(f"/ws/jobs/{small_job.pk}/", [(b"authorization", value.encode())])
        assert refused[:2] == (False, CLOSE_UNAUTHENTICATED), value


def test_bad_token_handshakes_spend_the_addresses_allowance_like_failed_api_calls(owner, small_job, settings):
    settings.API_THROTTLE_ANON = "3/min"
    path, guess = f"/ws/jobs/{small_job.pk}/", [(b"authorization", b"Token " + b"0" * 64)]
    good = [(b"authorization", f"Token {_token_for(owner)}".encode())]
    assert [handshake(path, guess)[:2] for _ in range(3)] == [(False, CLOSE_UNAUTHENTICATED)] * 3
    assert handshake(path, guess)[:2] == (False, CLOSE_THROTTLED)
    # The next handshake from that address is refused unread, even with a right token.
    assert handshake(path, good)[:2] == (False, CLOSE_THROTTLED)
    # Another address is not concerned.
    assert handshake(path, good, client="203.0.113.7")[0] is True


def test_websocket_and_api_failures_share_one_allowance_per_address(owner, small_job, settings):
    from rest_framework.test import APIClient

    settings.API_THROTTLE_ANON = "2/min"
    path, guess = f"/ws/jobs/{small_job.pk}/", [(b"authorization", b"Token not-a-token")]
    assert handshake(path, guess, client="198.51.100.4")[:2] == (False, CLOSE_UNAUTHENTICATED)
    api = APIClient(REMOTE_ADDR="198.51.100.4")
    api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert api.get("/api/v1/subscribers/lists").status_code == 401
    assert handshake(path, guess, client="198.51.100.4")[:2] == (False, CLOSE_THROTTLED)
    assert api.get("/api/v1/subscribers/lists").status_code == 429


def test_behind_a_proxy_a_handshake_counts_against_the_forwarded_address(owner, small_job, settings):
    settings.API_THROTTLE_ANON = "1/min"
    settings.NUM_PROXIES = 1
    path = f"/ws/jobs/{small_job.pk}/"
    guess = [(b"authorization", b"Token not-a-token"), (b"x-forwarded-for", b"spoofed, 198.51.100.9")]
    assert handshake(path, guess)[:2] == (False, CLOSE_UNAUTHENTICATED)
    assert handshake(path, guess)[:2] == (False, CLOSE_THROTTLED)
    other = [(b"authorization", b"Token not-a-token"), (b"x-forwarded-for", b"198.51.100.10")]
    assert handshake(path, other)[:2] == (False, CLOSE_UNAUTHENTICATED)


def test_a_handshake_without_a_token_still_needs_an_allowed_origin(small_job):
    # A session handshake from another site's page is refused before any authentication.
    connected, _, _ = handshake(f"/ws/jobs/{small_job.pk}/", [(b"origin", b"https://evil.example")])
    assert not connected
    connected, code, _ = handshake(f"/ws/jobs/{small_job.pk}/", [(b"origin", b"http://localhost")])
    assert (connected, code) == (False, CLOSE_UNAUTHENTICATED)  # allowed origin, but no session
