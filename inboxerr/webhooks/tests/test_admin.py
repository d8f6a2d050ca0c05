import pytest
from django.db import transaction
from django.test import Client

from inboxerr.actors import Actor
from inboxerr.webhooks import services
from inboxerr.webhooks.models import WebhookDelivery


@pytest.fixture
def setup(owner, outsider):
    mine = services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner, url="https://a.example.com/h")
    services.endpoint_create(actor=Actor(user=outsider, source="api"), owner=outsider, url="https://b.example.com/h")
    with transaction.atomic():
        services.event_emit(event="batch.failed", owner_id=owner.pk, payload={})
        services.event_emit(event="batch.failed", owner_id=outsider.pk, payload={})
    WebhookDelivery.objects.update(status="failed", response_code=503, response_body_excerpt="upstream down")
    return mine


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_lists_only_own_endpoints_and_deliveries(owner, setup):
    client = _client(owner)
    page = client.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert "a.example.com" in page and "b.example.com" not in page
    page = client.get("/admin/webhooks/webhookdelivery/").content.decode()
    assert "upstream down" in page and "503" in page
    assert page.count("batch.failed") >= 1


@pytest.mark.django_db
def test_admin_replay_action_requeues_own_delivery(owner, setup):
    mine = WebhookDelivery.objects.get(endpoint=setup)
    response = _client(owner).post(
        "/admin/webhooks/webhookdelivery/", {"action": "replay", "_selected_action": [mine.pk]}
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.status == "pending"
    assert WebhookDelivery.objects.exclude(pk=mine.pk).get().status == "failed"


@pytest.mark.django_db
def test_admin_shows_why_an_endpoint_was_disabled(owner, setup):
    setup.is_active, setup.disabled_reason = False, "The endpoint answered 410 Gone"
    setup.save()
    page = _client(owner).get("/admin/webhooks/webhookendpoint/").content.decode()
    assert "The endpoint answered 410 Gone" in page
