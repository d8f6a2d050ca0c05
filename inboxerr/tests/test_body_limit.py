"""API_MAX_BODY_BYTES: an API body over its route's limit is refused with 413 in the error shape,
naming the limit, before anything reads it; anonymous callers included. The batch API and the
routes that import files or records keep their own, larger limits."""

import json
import socket
from urllib.parse import urlsplit

import pytest

from campaigns.models import MessageBatch
from inboxerr.accounts import api_token_create
from inboxerr.actors import Actor
from inboxerr.tests.api_server import api_server
from inboxerr.tests.factories import UserFactory
from subscribers.models import Subscriber, SubscriberList

LISTS = "/api/v1/subscribers/lists"
# Tests with a server: their data must be committed; and the database is restored as migrated
# afterwards (content types, permissions), as the browser tests that follow expect to find it.
SERVED = pytest.mark.django_db(transaction=True, serialized_rollback=True)
BIG = 21_800_000  # the 21.8 MB a client once sent to see what the API would read


def json_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head, tail = b'{"name": "News", "description": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def post_raw(client, path: str, body: bytes, content_type: str = "application/json"):
    return client.generic("POST", path, body, content_type=content_type)


def test_a_body_over_the_limit_is_413_naming_it_and_nothing_is_stored(api):
    response = post_raw(api, LISTS, json_body(BIG))

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": f"body: {BIG:,} bytes is more than API_MAX_BODY_BYTES (1,048,576)",
                               "field": "body"}
    assert not SubscriberList.objects.exists()


def test_the_limit_is_the_setting_and_a_body_at_the_limit_is_read(api, settings):
    settings.API_MAX_BODY_BYTES = 200

    assert post_raw(api, LISTS, json_body(201)).status_code == 413
    response = post_raw(api, LISTS, json_body(200))
    assert response.status_code == 201, response.content
    assert SubscriberList.objects.get().description == json.loads(json_body(200))["description"]


def test_an_anonymous_caller_is_refused_by_size_on_an_open_route(anon_api, settings):
    settings.SMS_INBOUND_SECRET = "secret"
    response = post_raw(anon_api, "/api/v1/sms/inbound", json_body(BIG))
    assert response.status_code == 413
    assert response.json()["field"] == "body"


def test_the_batch_api_keeps_its_own_limit_and_shape(api, settings):
    settings.API_MAX_BODY_BYTES = 100
    item = {"request_id": "1", "channel": "email", "recipient": "ann@example.com", "subject": "Hi",
            "content": "Hello " + "x" * 500}
    assert post_raw(api, "/api/v1/batch/process", json.dumps([item]).encode()).status_code == 200

    settings.BATCH_MAX_BYTES = 300
    response = post_raw(api, "/api/v1/batch/process", json.dumps([item]).encode())
    assert response.status_code == 413
    assert response.json()["status"] == "error"
    assert response.json()["detail"].endswith("is more than BATCH_MAX_BYTES (300)")
    assert MessageBatch.objects.count() == 1


def test_record_imports_take_bodies_up_to_the_import_limit(api, settings):
    settings.API_MAX_BODY_BYTES = 100
    records = [{"email": f"person{n}@example.com", "name": "P" * 50} for n in range(20)]
    response = api.post("/api/v1/subscribers/bulk", {"list_name": "News", "subscribers": records}, format="json")
    assert response.status_code == 200, response.content
    assert Subscriber.objects.count() == 20

    settings.IMPORT_MAX_BYTES = 100
    response = api.post("/api/v1/subscribers/bulk", {"list_name": "News", "subscribers": records}, format="json")
    assert response.status_code == 413
    assert "IMPORT_MAX_BYTES (100)" in response.json()["detail"]


def test_a_malformed_content_length_is_a_400_naming_the_body(api):
    response = api.generic("POST", LISTS, b'{"name": "News"}', content_type="application/json", CONTENT_LENGTH="1x")
    assert response.status_code == 400
    assert response.json() == {"detail": "body: the Content-Length header is not a number", "field": "body"}


# --- Over the network: the server answers without waiting for the body ---------------------------


def _exchange(base: str, head: str, body_parts: list[bytes]) -> tuple[int, object]:
    """Send a request head and body parts on a raw socket and read the answer (status, JSON body).
    A server that refuses on the declared length answers whatever is still to come."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in body_parts:
            sock.sendall(part)
        raw = b""
        while not _complete(raw):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    head_part, _, payload = raw.partition(b"\r\n\r\n")
    return int(head_part.split(b" ", 2)[1]), json.loads(payload)


def _complete(raw: bytes) -> bool:
    head, found, payload = raw.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(payload) >= int(value)
    return False


def _head(method: str, path: str, base: str, *lines: str) -> str:
    host = urlsplit(base).netloc
    return "\n".join([f"{method} {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json", *lines, ""])


@SERVED
def test_django_s_server_answers_413_before_the_body_arrives(live_server):
    # Only the first 64 KiB of the 21.8 MB are sent: the answer comes all the same.
    head = _head("POST", LISTS, live_server.url, f"Content-Length: {BIG}")
    status, body = _exchange(live_server.url, head, [json_body(BIG)[:65536]])
    assert status == 413
    assert body["detail"] == f"body: {BIG:,} bytes is more than API_MAX_BODY_BYTES (1,048,576)"


@SERVED
def test_an_anonymous_upload_is_refused_before_its_body_is_read(live_server):
    # The batch API takes up to BATCH_MAX_BYTES (64 MiB), so the size passes; no token does not.
    head = _head("POST", "/api/v1/batch/process", live_server.url, f"Content-Length: {BIG}")
    status, body = _exchange(live_server.url, head, [json_body(BIG)[:65536]])
    assert status == 401
    assert body == {"status": "error", "detail": "Authentication credentials were not provided."}


@pytest.fixture
def served(transactional_db, tmp_path):
    """`runserver` (Daphne) and an API token of an operator who may create lists."""
    from inboxerr.accounts import roles_ensure

    user = UserFactory(username="sender")
    user.groups.add(roles_ensure())
    _, token = api_token_create(actor=Actor.system("command"), username=user.username)
    with api_server(tmp_path) as base:
        yield base, token


def _chunked(data: bytes, size: int = 65536) -> list[bytes]:
    parts = [b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size]) for i in range(0, len(data), size)]
    return [*parts, b"0\r\n\r\n"]


@pytest.mark.slow
@SERVED
def test_through_the_production_server(served):
    base, token = served
    auth = f"Authorization: Token {token}"

    # Daphne receives the whole body before the application runs; Inboxerr then refuses it
    # without reading it into Python.
    status, body = _exchange(base, _head("POST", LISTS, base, auth, f"Content-Length: {BIG}"), [json_body(BIG)])
    assert status == 413
    assert body["field"] == "body"

    # A chunked body (no Content-Length) is read up to the limit, and no further.
    head = _head("POST", LISTS, base, auth, "Transfer-Encoding: chunked")
    status, body = _exchange(base, head, _chunked(json_body(2 * 1024 * 1024)))
    assert status == 413
    assert body["detail"].startswith("body: sent without Content-Length and longer than API_MAX_BODY_BYTES")

    # Within the limit, it is read as the client sent it.
    status, body = _exchange(base, head, _chunked(json.dumps({"name": "Chunked"}).encode(), size=5))
    assert status == 201, body
    assert SubscriberList.objects.get().name == "Chunked"
