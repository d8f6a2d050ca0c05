from urllib.parse import quote

import pytest
from django.db import transaction

from audit.models import AuditLog
from inboxerr.actors import Actor
from inboxerr.webhooks import services
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint

URL = "https://hooks.example.com/inboxerr"
BASE = "/api/v1/webhooks/"


@pytest.fixture
def hook(owner) -> WebhookEndpoint:
    return services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner, url=URL)


@pytest.fixture
def delivery(owner, hook) -> WebhookDelivery:
    with transaction.atomic():
        services.event_emit(event="campaign.completed", owner_id=owner.pk, payload={"campaign_id": 1})
    return WebhookDelivery.objects.get()


def routes(hook: WebhookEndpoint, delivery: WebhookDelivery) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", BASE, None),
        ("post", BASE, {"url": URL}),
        ("get", f"{BASE}{hook.pk}/", None),
        ("patch", f"{BASE}{hook.pk}/", {"is_active": False}),
        ("put", f"{BASE}{hook.pk}/", {"url": URL}),
        ("delete", f"{BASE}{hook.pk}/", None),
        ("post", f"{BASE}{hook.pk}/rotate-secret", None),
        ("get", f"{BASE}{hook.pk}/deliveries", None),
        ("post", f"{BASE}deliveries/{delivery.pk}/replay", None),
        ("post", f"{BASE}create", {"url": URL}),
        ("get", f"{BASE}getall", None),
        ("put", f"{BASE}update_by_id/{hook.pk}/inactive", None),
        ("delete", f"{BASE}del_by_url/{quote(URL, safe='')}", None),
    ]


@pytest.mark.django_db
def test_create_returns_the_secret_once_and_audits(api, owner):
    response = api.post(BASE, {"url": URL, "events": ["import.completed"]}, format="json")
    assert response.status_code == 201, response.data
    assert response.data["secret"].startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get(pk=response.data["id"])
    assert endpoint.owner == owner and endpoint.events == ["import.completed"]
    assert "secret" not in api.get(f"{BASE}{endpoint.pk}/").data
    assert all("secret" not in item for item in api.get(BASE).data)
    row = AuditLog.objects.get(action="create", entity_type="webhook_endpoint")
    assert row.owner_id == owner.pk and row.actor_id == owner.pk and "secret" not in row.after


@pytest.mark.django_db
def test_create_rejects_unknown_events_and_bad_urls(api, settings):
    response = api.post(BASE, {"url": URL, "events": ["nope"]}, format="json")
    assert response.status_code == 400 and "events" in response.data["detail"]
    response = api.post(BASE, {"url": "ftp://example.com/x"}, format="json")
    assert response.status_code == 400
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = api.post(BASE, {"url": "http://169.254.169.254/latest"}, format="json")
    assert response.status_code == 400 and response.data["detail"] == "The URL points to a non-public address"
    assert not WebhookEndpoint.objects.exists() and not AuditLog.objects.exists()


@pytest.mark.django_db
def test_owner_can_use_every_route(api, hook, delivery):
    for method, path, body in routes(hook, delivery):
        if method == "delete":
            continue
        response = getattr(api, method)(path, body, format="json")
        assert response.status_code in (200, 201, 202), (method, path, response.status_code, response.data)
    assert api.delete(f"{BASE}del_by_url/{quote(URL, safe='')}").data["deleted"] == 3
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_outsider_gets_404_on_every_object_route(outsider_api, hook, delivery):
    for method, path, body in routes(hook, delivery):
        if method == "post" and path in (BASE, f"{BASE}create"):
            continue  # creating their own endpoint is allowed (and would make del_by_url find it)
        response = getattr(outsider_api, method)(path, body, format="json")
        if method == "get" and path in (BASE, f"{BASE}getall"):
            assert response.status_code == 200 and response.data == [], path
        else:
            assert response.status_code == 404, (method, path, response.status_code)
    hook.refresh_from_db()
    assert hook.is_active and hook.url == URL


@pytest.mark.django_db
def test_anonymous_gets_401_everywhere(anon_api, hook, delivery):
    for method, path, body in routes(hook, delivery):
        assert getattr(anon_api, method)(path, body, format="json").status_code == 401, (method, path)


@pytest.mark.django_db
def test_user_without_permissions_gets_403(no_perms_api, hook, delivery):
    for method, path, body in routes(hook, delivery):
        assert getattr(no_perms_api, method)(path, body, format="json").status_code == 403, (method, path)


@pytest.mark.django_db
def test_seed_update_by_id_sets_status_and_audits(api, hook):
    response = api.put(f"{BASE}update_by_id/{hook.pk}/inactive")
    assert response.status_code == 200 and response.data["is_active"] is False
    assert api.put(f"{BASE}update_by_id/{hook.pk}/sleepy").status_code == 400
    hook.refresh_from_db()
    assert not hook.is_active and hook.disabled_reason == "Disabled by its owner"
    assert api.put(f"{BASE}update_by_id/{hook.pk}/active").data["is_active"] is True
    hook.refresh_from_db()
    assert hook.disabled_reason == ""
    rows = AuditLog.objects.filter(action="update", entity_type="webhook_endpoint").order_by("id")
    assert [(r.before["is_active"], r.after["is_active"]) for r in rows] == [(True, False), (False, True)]


@pytest.mark.django_db
def test_seed_del_by_url_deletes_only_own_endpoints(api, outsider, hook):
    theirs = services.endpoint_create(actor=Actor(user=outsider, source="api"), owner=outsider, url=URL)
    response = api.delete(f"{BASE}del_by_url/{quote(URL, safe='')}")
    assert response.status_code == 200 and response.data == {"deleted": 1}
    assert list(WebhookEndpoint.objects.all()) == [theirs]
    assert AuditLog.objects.filter(action="delete", entity_type="webhook_endpoint", entity_id=str(hook.pk)).exists()
    assert api.delete(f"{BASE}del_by_url/{quote(URL, safe='')}").status_code == 404


@pytest.mark.django_db
def test_rotate_secret_returns_a_new_secret_and_audits(api, hook):
    old = hook.secret
    response = api.post(f"{BASE}{hook.pk}/rotate-secret")
    assert response.status_code == 200 and response.data["secret"] != old
    hook.refresh_from_db()
    assert hook.previous_secret == old and hook.previous_secret_expires_at is not None
    row = AuditLog.objects.get(action="rotate_secret")
    assert old not in str(row.metadata) and hook.secret not in str(row.metadata)


@pytest.mark.django_db
def test_deliveries_are_listed_and_replayed(api, hook, delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=8, next_attempt_at=None)
    listing = api.get(f"{BASE}{hook.pk}/deliveries")
    assert listing.status_code == 200 and listing.data["results"][0]["webhook_id"] == delivery.webhook_id
    response = api.post(f"{BASE}deliveries/{delivery.pk}/replay")
    assert response.status_code == 202 and response.data["status"] == "pending"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


@pytest.mark.django_db
def test_replay_on_a_disabled_endpoint_is_refused(api, hook, delivery):
    WebhookEndpoint.objects.filter(pk=hook.pk).update(is_active=False)
    response = api.post(f"{BASE}deliveries/{delivery.pk}/replay")
    assert response.status_code == 409
    assert not AuditLog.objects.filter(action="replay").exists()


@pytest.mark.django_db
def test_delete_removes_endpoint_and_audits(api, hook):
    assert api.delete(f"{BASE}{hook.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()
    row = AuditLog.objects.get(action="delete", entity_type="webhook_endpoint")
    assert row.before["url"] == URL
