"""Webhooks run from the console: create an endpoint (secret shown once, the API's URL rules),
rotate its secret, send it a test event, replay a delivery; only the owner's endpoints. Forms and
actions are posted with the page's CSRF token."""

import json
import re

import pytest
from django.db import transaction

from audit.models import AuditLog
from inboxerr.actors import Actor
from inboxerr.errors import Conflict
from inboxerr.tests.admin_browser import action, browser_for, csrf_token, field_errors, page_messages, submit
from inboxerr.webhooks import services, signing
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/webhooks/webhookendpoint/"
ADD = ENDPOINTS + "add/"


def _secret_in(message: str) -> str:
    return re.search(r": (whsec_\S+) — copy it now", message).group(1)


def test_an_operator_creates_an_endpoint_and_sees_its_secret_once(owner, receiver):
    browser = browser_for(owner)
    response = submit(browser, ADD, {"url": receiver.url, "events": ["import.completed", "batch.failed"]}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.owner == owner and endpoint.events == ["batch.failed", "import.completed"]
    secret_messages = [m for m in page_messages(response) if "whsec_" in m]
    assert len(secret_messages) == 1 and _secret_in(secret_messages[0]) == endpoint.secret
    assert AuditLog.objects.filter(entity_type="webhook_endpoint", action="create", entity_id=str(endpoint.pk)).exists()
    assert endpoint.secret not in browser.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()


def test_a_url_to_a_private_address_is_refused_on_the_url_field(owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = submit(browser_for(owner), ADD, {"url": "http://10.0.0.8/hook"})
    assert response.status_code == 200
    assert field_errors(response, "url") == ["The URL points to a non-public address"]
    assert not WebhookEndpoint.objects.exists()


def test_editing_an_endpoint_goes_through_the_service_and_is_audited(owner, endpoint):
    response = submit(browser_for(owner), f"{ENDPOINTS}{endpoint.pk}/change/",
                      {"url": "https://hooks.example.com/new", "events": ["campaign.started"]})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.com/new" and endpoint.events == ["campaign.started"]
    row = AuditLog.objects.get(entity_type="webhook_endpoint", action="update")
    assert row.after["url"] == "https://hooks.example.com/new"


def test_rotating_a_secret_shows_the_new_one_once_and_keeps_the_old_one_signing(owner, endpoint):
    old = endpoint.secret
    response = action(browser_for(owner), ENDPOINTS, "rotate_secret", [endpoint.pk])
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert [_secret_in(m) for m in page_messages(response)] == [endpoint.secret]
    assert AuditLog.objects.filter(entity_type="webhook_endpoint", action="rotate_secret").count() == 1


def test_sending_a_test_event_delivers_a_signed_test_to_the_receiver(owner, endpoint, receiver):
    endpoint.events = ["import.completed"]  # a test goes out whatever the endpoint subscribes to
    endpoint.save()
    response = action(browser_for(owner), ENDPOINTS, "send_test_event", [endpoint.pk])
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.event == "webhook.test"
    assert page_messages(response) == [f"Test event {delivery.webhook_id} queued for {endpoint.url}."]
    services.delivery_attempt(delivery.pk)
    request = receiver.requests[-1]
    assert json.loads(request["body"])["type"] == "webhook.test"
    expected = signing.signature_header(secrets_=[endpoint.secret], msg_id=delivery.webhook_id,
                                        timestamp=int(request["headers"]["webhook-timestamp"]), body=request["body"])
    assert request["headers"]["webhook-signature"] == expected
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_a_test_event_is_audited_with_its_webhook_id(owner, endpoint):
    delivery = services.endpoint_send_test(actor=Actor(user=owner, source="api"), endpoint=endpoint)
    row = AuditLog.objects.get(entity_type="webhook_endpoint", action="test")
    assert row.entity_id == str(endpoint.pk) and row.metadata["webhook_id"] == delivery.webhook_id


def test_a_disabled_endpoint_gets_no_test_event(owner, endpoint):
    services.endpoint_update(actor=Actor(user=owner, source="api"), endpoint=endpoint, data={"is_active": False})
    with pytest.raises(Conflict):
        services.endpoint_send_test(actor=Actor(user=owner, source="api"), endpoint=endpoint)
    response = action(browser_for(owner), ENDPOINTS, "send_test_event", [endpoint.pk])
    assert page_messages(response) == [f"{endpoint.url}: The endpoint is disabled; reactivate it before sending a test event"]
    assert not WebhookDelivery.objects.exists()


def test_an_outsider_can_neither_test_nor_rotate_someone_elses_endpoint(outsider, endpoint):
    secret = endpoint.secret
    browser = browser_for(outsider)
    action(browser, ENDPOINTS, "send_test_event", [endpoint.pk])
    action(browser, ENDPOINTS, "rotate_secret", [endpoint.pk])
    endpoint.refresh_from_db()
    assert endpoint.secret == secret and not WebhookDelivery.objects.exists()
    assert browser.get(f"{ENDPOINTS}{endpoint.pk}/change/").status_code == 302  # "does not exist"


def test_replaying_a_failed_delivery_queues_it_again_with_the_same_webhook_id(owner, endpoint):
    with transaction.atomic():
        services.event_emit(event="batch.failed", owner_id=owner.pk, payload={"batch_id": "b1"})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=3, next_attempt_at=None)
    response = action(browser_for(owner), "/admin/webhooks/webhookdelivery/", "replay", [delivery.pk])
    assert page_messages(response) == ["1 delivery(ies) queued again"]
    replayed = WebhookDelivery.objects.get()
    assert (replayed.status, replayed.attempts, replayed.webhook_id) == ("pending", 0, delivery.webhook_id)


def test_deleting_an_endpoint_from_the_console_is_audited(owner, endpoint):
    browser = browser_for(owner)
    assert browser.get(f"{ENDPOINTS}{endpoint.pk}/delete/").status_code == 200
    response = browser.post(f"{ENDPOINTS}{endpoint.pk}/delete/", {"post": "yes", "csrfmiddlewaretoken": csrf_token(browser)})
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert AuditLog.objects.filter(entity_type="webhook_endpoint", action="delete").count() == 1
