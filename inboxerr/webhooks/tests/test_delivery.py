import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from inboxerr.actors import Actor
from inboxerr.webhooks import services, tasks
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)


def verify(secret: str, headers: dict, body: bytes) -> list[bool]:
    """What a receiver does: recompute the signature with its secret and compare."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return [hmac.compare_digest(sig, expected) for sig in headers["webhook-signature"].split(" ")]


def emit(owner, event: str = "import.completed", payload: dict | None = None) -> WebhookDelivery:
    with transaction.atomic():
        count = services.event_emit(event=event, owner_id=owner.pk, payload=payload or {"job_id": 7})
    assert count == 1
    return WebhookDelivery.objects.latest("id")


def test_delivery_reaches_the_receiver_signed_with_the_endpoint_secret(owner, endpoint, receiver):
    delivery = emit(owner, payload={"job_id": 7, "rows": 3})
    tasks.deliver(delivery.pk)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["path"] == "/hook"
    assert headers["webhook-id"] == delivery.webhook_id and delivery.webhook_id.startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert verify(endpoint.secret, headers, request["body"]) == [True]
    body = json.loads(request["body"])
    assert body["type"] == "import.completed" and body["data"] == {"job_id": 7, "rows": 3}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None


def test_event_emit_refuses_to_run_outside_a_transaction(owner, endpoint):
    with pytest.raises(RuntimeError):
        services.event_emit(event="import.completed", owner_id=owner.pk, payload={})
    assert not WebhookDelivery.objects.exists()


def test_event_emit_skips_inactive_endpoints_other_owners_and_unwanted_events(owner, outsider, receiver):
    actor = Actor(user=owner, source="api")
    services.endpoint_create(actor=actor, owner=owner, url=receiver.url, events=["campaign.started"])
    services.endpoint_create(actor=actor, owner=owner, url=receiver.url, is_active=False)
    services.endpoint_create(actor=actor, owner=outsider, url=receiver.url)
    with transaction.atomic():
        assert services.event_emit(event="import.completed", owner_id=owner.pk, payload={}) == 0
        assert services.event_emit(event="campaign.started", owner_id=owner.pk, payload={}) == 1
    with transaction.atomic(), pytest.raises(ValueError):
        services.event_emit(event="no.such", owner_id=owner.pk, payload={})


def test_rolled_back_change_leaves_no_delivery(owner, endpoint):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        services.event_emit(event="import.completed", owner_id=owner.pk, payload={})
        1 / 0
    assert not WebhookDelivery.objects.exists()


def test_delivery_is_retried_after_500s_then_delivered(owner, endpoint, receiver):
    receiver.statuses = [500, 503]
    delivery = emit(owner)
    tasks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
    assert len(delivery.response_body_excerpt) == 500 and delivery.last_error == "HTTP 500"
    assert tasks.sweep_due_deliveries() == 1
    tasks.deliver(delivery.pk)
    tasks.deliver(delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 200)
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [delivery.webhook_id] * 3
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.is_active


def test_delivery_fails_for_good_after_the_last_retry(owner, endpoint, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [0]
    receiver.statuses = [500, 500]
    delivery = emit(owner)
    tasks.deliver(delivery.pk)
    tasks.deliver(delivery.pk)
    tasks.deliver(delivery.pk)  # nothing left to send
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert len(receiver.requests) == 2


def test_retry_waits_for_the_schedule(owner, endpoint, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [300]
    receiver.statuses = [500]
    delivery = emit(owner)
    tasks.deliver(delivery.pk)
    tasks.deliver(delivery.pk)  # not due yet: not sent
    assert tasks.sweep_due_deliveries() == 0
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=290)


def test_redirect_is_not_followed_and_counts_as_failure(owner, endpoint, receiver):
    receiver.statuses = [302]
    delivery = emit(owner)
    tasks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_code, delivery.last_error) == ("pending", 302, "HTTP 302")
    assert len(receiver.requests) == 1


def test_410_disables_the_endpoint_at_once(owner, endpoint, receiver):
    receiver.statuses = [410]
    delivery = emit(owner)
    with transaction.atomic():  # a second delivery pending on the same endpoint
        services.event_emit(event="import.failed", owner_id=owner.pk, payload={})
    tasks.deliver(delivery.pk)

    endpoint.refresh_from_db()
    assert not endpoint.is_active and "410" in endpoint.disabled_reason
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
    assert AuditLog.objects.filter(entity_type="webhook_endpoint", action="update", actor=None,
                                   entity_id=str(endpoint.pk)).exists()


def test_five_days_of_failures_disable_the_endpoint(owner, endpoint, receiver):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=5, minutes=1))
    receiver.statuses = [500]
    delivery = emit(owner)
    tasks.deliver(delivery.pk)

    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "failing for more than 5 days" in endpoint.disabled_reason and "HTTP 500" in endpoint.disabled_reason
    delivery.refresh_from_db()
    assert delivery.status == "failed"


def test_four_days_of_failures_keep_the_endpoint(owner, endpoint, receiver):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=4))
    receiver.statuses = [500]
    tasks.deliver(emit(owner).pk)
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_rotation_signs_with_both_secrets(owner, endpoint, receiver):
    old = endpoint.secret
    endpoint = services.endpoint_rotate_secret(actor=Actor(user=owner, source="api"), endpoint=endpoint)
    tasks.deliver(emit(owner).pk)
    headers = {k.lower(): v for k, v in receiver.requests[0]["headers"].items()}
    body = receiver.requests[0]["body"]
    assert verify(endpoint.secret, headers, body) == [True, False]
    assert verify(old, headers, body) == [False, True]


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1", "[::ffff:127.0.0.1]"])
def test_private_addresses_are_refused_at_connect_time(owner, receiver, settings, host):
    endpoint = services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner,
                                        url=f"http://{host}:{receiver.server.server_port}/hook")
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    delivery = emit(owner)
    tasks.deliver(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.last_error.startswith("Refused")
    assert receiver.requests == []
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None


def test_a_name_resolving_to_loopback_is_refused(owner, receiver, settings):
    services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner,
                             url=f"http://localhost:{receiver.server.server_port}/hook")
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    delivery = emit(owner)
    tasks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert "localhost resolves to a non-public address" in delivery.last_error
    assert receiver.requests == []


def test_address_check_covers_every_range():
    from inboxerr.webhooks.transport import address_refused

    for address in ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "224.0.0.1", "240.0.0.1", "0.0.0.0", "::1", "::", "fe80::1%eth0", "fc00::1", "::ffff:10.0.0.1"]:
        assert address_refused(address), address
    for address in ["93.184.216.34", "2606:4700::1111", "::ffff:93.184.216.34"]:
        assert not address_refused(address), address


# IPv4 addresses carried inside IPv6 ones: each form with a private address inside, and the plain
# IPv4 address it stands for (both must be refused the same way).
EMBEDDED_PRIVATE = [
    ("2002:7f00:1::", "127.0.0.1"),  # 6to4: bits 16-48
    ("2002:a9fe:a9fe:1::5", "169.254.169.254"),
    ("2002:c0a8:101::", "192.168.1.1"),
    ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64 well-known prefix: the last 32 bits
    ("64:ff9b::a00:1", "10.0.0.1"),
    ("64:ff9b::6440:1", "100.64.0.1"),
    ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible (deprecated)
    ("::169.254.169.254", "169.254.169.254"),
    ("::ffff:169.254.169.254", "169.254.169.254"),  # IPv4-mapped
]
ALWAYS_REFUSED_IPV6 = [
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo: relay 65.54.227.120, client hidden by XOR
    "2001:0:5db8:d822::5db8:d822",  # Teredo around a public relay and client
    "64:ff9b:1::5db8:d822",  # NAT64 local-use prefix, even around a public address
    "64:ff9b:1::a00:1",
    "::93.184.216.34",  # IPv4-compatible is reserved IPv6 space whatever it carries
]


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED_PRIVATE)
def test_an_ipv4_address_inside_ipv6_is_judged_as_that_ipv4_address(address, ipv4):
    from inboxerr.webhooks.transport import address_refused, embedded_ipv4
    import ipaddress

    assert str(embedded_ipv4(ipaddress.IPv6Address(address))) == ipv4
    assert address_refused(ipv4) and address_refused(address)


@pytest.mark.parametrize("address", ALWAYS_REFUSED_IPV6)
def test_teredo_nat64_local_use_and_ipv4_compatible_are_refused_outright(address):
    from inboxerr.webhooks.transport import address_refused

    assert address_refused(address)


def test_nat64_of_a_public_address_is_allowed():
    # What DNS64 answers for a public host on an IPv6-only network: the translator reaches
    # 93.184.216.34, a public address, so the webhook may go there.
    from inboxerr.webhooks.transport import address_refused

    assert not address_refused("64:ff9b::5db8:d822")
    assert not address_refused("64:ff9b::93.184.216.34")


@pytest.mark.parametrize("address", [a for a, _ in EMBEDDED_PRIVATE] + ALWAYS_REFUSED_IPV6)
def test_a_literal_embedded_address_is_refused_when_the_endpoint_is_saved(api, settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = api.post("/api/v1/webhooks/", {"url": f"http://[{address}]:8080/hook"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "The URL points to a non-public address", "field": "url"}
    assert not WebhookEndpoint.objects.exists() and not AuditLog.objects.exists()


@pytest.mark.parametrize("address", ["2002:7f00:1::", "64:ff9b::7f00:1", "::127.0.0.1",
                                     "2001:0:4136:e378:8000:63bf:3fff:fdd2", "64:ff9b:1::5db8:d822"])
def test_a_literal_embedded_address_is_refused_at_connect_time(owner, receiver, settings, address):
    # Saved while private networks were allowed (or before this check existed): the connect
    # check still refuses it, and no socket is opened.
    services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner, url=f"http://[{address}]:9/hook")
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    delivery = emit(owner)
    tasks.deliver(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.last_error.startswith(f"Refused: {address} resolves to a non-public address")


def _resolving(monkeypatch, name: str, address: str) -> None:
    """Make `name` resolve to `address`, as an attacker's DNS server would answer: no resolver
    this test can run answers with these addresses, so getaddrinfo is replaced for that one name."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real(host, port, *args, **kwargs)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED_PRIVATE)
def test_a_name_resolving_to_an_embedded_private_address_is_refused_like_the_plain_one(
        monkeypatch, settings, address, ipv4):
    from inboxerr.webhooks.transport import UnsafeDestination, resolve_checked

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    messages = []
    for answer in (ipv4, address):
        _resolving(monkeypatch, "hooks.example.test", answer)
        with pytest.raises(UnsafeDestination) as refused:
            resolve_checked("hooks.example.test", 443)
        messages.append(str(refused.value))
    assert messages == [f"Refused: hooks.example.test resolves to a non-public address ({a})" for a in (ipv4, address)]


@pytest.mark.parametrize("address", ALWAYS_REFUSED_IPV6)
def test_a_name_resolving_to_teredo_or_nat64_local_use_is_refused(monkeypatch, settings, address):
    from inboxerr.webhooks.transport import UnsafeDestination, resolve_checked

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    _resolving(monkeypatch, "hooks.example.test", address)
    with pytest.raises(UnsafeDestination, match="resolves to a non-public address"):
        resolve_checked("hooks.example.test", 443)


def test_a_name_resolving_to_nat64_of_a_public_address_passes_the_check(monkeypatch, settings):
    from inboxerr.webhooks.transport import resolve_checked

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    _resolving(monkeypatch, "hooks.example.test", "64:ff9b::5db8:d822")
    assert [info[4][0] for info in resolve_checked("hooks.example.test", 443)] == ["64:ff9b::5db8:d822"]


def test_a_delivery_to_a_name_resolving_to_6to4_loopback_is_refused(owner, receiver, settings, monkeypatch):
    services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner, url="https://hooks.example.test/in")
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    _resolving(monkeypatch, "hooks.example.test", "2002:7f00:1::")
    delivery = emit(owner)
    tasks.deliver(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.last_error == "Refused: hooks.example.test resolves to a non-public address (2002:7f00:1::)"
    assert receiver.requests == []


def test_replay_sends_the_same_message_again(owner, endpoint, receiver):
    delivery = emit(owner)
    tasks.deliver(delivery.pk)
    services.delivery_replay(actor=Actor(user=owner, source="api"), delivery=delivery)
    tasks.deliver(delivery.pk)
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [delivery.webhook_id] * 2
    assert AuditLog.objects.filter(action="replay", entity_type="webhook_delivery", entity_id=str(delivery.pk)).exists()
