"""Webhook writes: endpoints (each change audited), the outbox (event_emit) and delivery."""

import ipaddress
import json
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.services import audit_record
from inboxerr.actors import Actor
from inboxerr.crashes import crashed_reason
from inboxerr.errors import Conflict, InvalidInput
from inboxerr.webhooks import signing, transport
from inboxerr.webhooks.events import WebhookEvent
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint
from inboxerr.metrics import counter_add

logger = logging.getLogger(__name__)
Status = WebhookDelivery.Status
ENTITY = "webhook_endpoint"


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    # Never the secret: audit rows are readable by the owner and by admins.
    return {"url": endpoint.url, "events": endpoint.events, "is_active": endpoint.is_active}


def _url_validate(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("The URL must be an absolute http(s) URL", field="url")
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        # A literal address can be refused now; names are checked again at every connect.
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            return url
        if transport.address_refused(parts.hostname):
            raise InvalidInput("The URL points to a non-public address", field="url")
    return url


def _events_validate(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(WebhookEvent.values))
    if unknown:
        raise InvalidInput(f"Unknown events: {', '.join(unknown)}", field="events")
    return sorted(set(events))


@transaction.atomic
def endpoint_create(*, actor: Actor, owner: object, url: str, events: list[str] | None = None,
                    is_active: bool = True) -> WebhookEndpoint:
    """Register an endpoint. Its secret is on the returned instance; show it to the caller once."""
    endpoint = WebhookEndpoint.objects.create(
        owner=owner, url=_url_validate(url), events=_events_validate(events or []),
        secret=signing.secret_generate(), is_active=is_active,
    )
    audit_record(
        actor=actor, action="create", entity_type=ENTITY, entity_id=endpoint.pk, owner_id=endpoint.owner_id,
        user_action=f"Created webhook endpoint {endpoint.url}", after=_snapshot(endpoint),
    )
    return endpoint


@transaction.atomic
def endpoint_update(*, actor: Actor, endpoint: WebhookEndpoint, data: dict) -> WebhookEndpoint:
    """Change url, events or is_active. Reactivating clears the reason it was disabled."""
    before = _snapshot(endpoint)
    if "url" in data:
        endpoint.url = _url_validate(data["url"])
    if "events" in data:
        endpoint.events = _events_validate(data["events"])
    if "is_active" in data:
        if data["is_active"] and not endpoint.is_active:
            endpoint.disabled_reason, endpoint.failing_since = "", None
        elif not data["is_active"] and endpoint.is_active:
            endpoint.disabled_reason = "Disabled by its owner"
        endpoint.is_active = data["is_active"]
    endpoint.save()
    audit_record(
        actor=actor, action="update", entity_type=ENTITY, entity_id=endpoint.pk, owner_id=endpoint.owner_id,
        user_action=f"Updated webhook endpoint {endpoint.url}", before=before, after=_snapshot(endpoint),
    )
    return endpoint


@transaction.atomic
def endpoint_delete(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    before, pk = _snapshot(endpoint), endpoint.pk
    endpoint.delete()
    audit_record(
        actor=actor, action="delete", entity_type=ENTITY, entity_id=pk, owner_id=endpoint.owner_id,
        user_action=f"Deleted webhook endpoint {before['url']}", before=before,
    )


@transaction.atomic
def endpoint_rotate_secret(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """New secret; the old one keeps signing alongside it for WEBHOOK_SECRET_ROTATION_HOURS."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + timedelta(hours=settings.WEBHOOK_SECRET_ROTATION_HOURS)
    endpoint.secret = signing.secret_generate()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    audit_record(
        actor=actor, action="rotate_secret", entity_type=ENTITY, entity_id=endpoint.pk, owner_id=endpoint.owner_id,
        user_action=f"Rotated the secret of webhook endpoint {endpoint.url}",
        metadata={"previous_valid_until": endpoint.previous_secret_expires_at.isoformat()},
    )
    return endpoint


@transaction.atomic
def endpoint_send_test(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue one `webhook.test` delivery to this endpoint, whatever events it subscribes to, so
    its owner can check that the receiver answers and verifies the signature. It is signed,
    retried and recorded like any delivery."""
    if not endpoint.is_active:
        raise Conflict("The endpoint is disabled; reactivate it before sending a test event")
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event=WebhookEvent.TEST, next_attempt_at=timezone.now(),
        payload={"endpoint_id": endpoint.pk, "message": "A test event from Inboxerr"},
    )
    audit_record(
        actor=actor, action="test", entity_type=ENTITY, entity_id=endpoint.pk, owner_id=endpoint.owner_id,
        user_action=f"Sent a test event to webhook endpoint {endpoint.url}",
        metadata={"webhook_id": delivery.webhook_id},
    )
    transaction.on_commit(lambda: deliveries_enqueue([delivery.pk]))
    return delivery


def _disable(endpoint: WebhookEndpoint, reason: str) -> None:
    """Disable an endpoint the system gave up on, failing its pending deliveries with it."""
    with transaction.atomic():
        updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, disabled_reason=reason[:300]
        )
        if not updated:
            return
        WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=Status.PENDING).update(
            status=Status.FAILED, next_attempt_at=None, last_error="Endpoint disabled"
        )
        audit_record(
            actor=Actor.system(), action="update", entity_type=ENTITY, entity_id=endpoint.pk,
            owner_id=endpoint.owner_id, user_action=f"Disabled webhook endpoint {endpoint.url}: {reason}"[:500],
            before={"is_active": True}, after={"is_active": False, "disabled_reason": reason},
        )


def event_emit(*, event: str, owner_id: int, payload: dict) -> int:
    """Write one delivery per active endpoint of the owner that wants this event (the outbox).

    Call it inside the transaction that makes the change: the rows exist exactly when the change
    does, and delivery is enqueued only once it commits. Returns the number of deliveries.
    """
    if event not in WebhookEvent.values:
        raise ValueError(f"Unknown webhook event {event!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_emit() must run inside the transaction that makes the change")
    endpoints = [e for e in WebhookEndpoint.objects.filter(owner_id=owner_id, is_active=True) if e.wants(event)]
    if not endpoints:
        return 0
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=e, event=event, payload=payload, next_attempt_at=now) for e in endpoints
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: deliveries_enqueue(ids))
    return len(ids)


def deliveries_enqueue(delivery_ids: list[int]) -> None:
    from django_q.tasks import async_task

    for delivery_id in delivery_ids:
        async_task("inboxerr.webhooks.tasks.deliver", delivery_id, task_name=f"webhook-{delivery_id}")


@transaction.atomic
def delivery_replay(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (same webhook id, so receivers can deduplicate)."""
    if not delivery.endpoint.is_active:
        raise Conflict("The endpoint is disabled; reactivate it before replaying")
    delivery.status, delivery.next_attempt_at, delivery.attempts = Status.PENDING, timezone.now(), 0
    delivery.save(update_fields=["status", "next_attempt_at", "attempts"])
    audit_record(
        actor=actor, action="replay", entity_type="webhook_delivery", entity_id=delivery.pk,
        owner_id=delivery.endpoint.owner_id, user_action=f"Replayed webhook {delivery.webhook_id} ({delivery.event})",
    )
    transaction.on_commit(lambda: deliveries_enqueue([delivery.pk]))
    return delivery


def deliveries_due(*, limit: int = 1000) -> list[int]:
    """Ids of pending deliveries whose next attempt is due (for the sweeper)."""
    return list(
        WebhookDelivery.objects.filter(
            status=Status.PENDING, next_attempt_at__lte=timezone.now(), endpoint__is_active=True
        ).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


def _claim(delivery_id: int) -> bool:
    """Take the delivery for this worker: push its next attempt past the send timeout, checking
    the row count, so two workers (or the sweeper and the on-commit task) never both send it.
    The attempt counts from here: one whose worker dies records nothing, yet still uses one of
    the attempts the retry schedule allows (inboxerr/crashes.py)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_id, status=Status.PENDING, next_attempt_at__lte=now)
        .update(next_attempt_at=lease, attempts=F("attempts") + 1)
    )


def _request(delivery: WebhookDelivery) -> tuple[bytes, dict[str, str]]:
    endpoint = delivery.endpoint
    body = json.dumps(
        {"type": delivery.event, "timestamp": delivery.created_at.isoformat(), "data": delivery.payload},
        separators=(",", ":"), default=str,
    ).encode()
    timestamp = int(timezone.now().timestamp())
    secrets_ = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > timezone.now():
        secrets_.append(endpoint.previous_secret)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Inboxerr-Webhooks/1",
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            secrets_=secrets_, msg_id=delivery.webhook_id, timestamp=timestamp, body=body
        ),
    }
    return body, headers


def delivery_attempt(delivery_id: int) -> WebhookDelivery | None:
    """Send one delivery now if it is due and nobody else holds it; record the outcome and
    schedule the retry. Returns the delivery, or None when it was not ours to send."""
    if not _claim(delivery_id):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        _failed(delivery, error="Endpoint disabled", final=True)
        return delivery
    allowed = len(settings.WEBHOOK_RETRY_SCHEDULE_SECONDS) + 1
    if delivery.attempts > allowed:
        # A recorded failure past the last retry fails the delivery, so a pending one with every
        # attempt taken had runs whose worker died: park it rather than send it again. This
        # claim sent nothing and is not an attempt.
        delivery.attempts -= 1
        reason = crashed_reason(doing=f"delivering this webhook, with all {allowed} attempts used",
                                last_error=delivery.last_error)
        _failed(delivery, error=reason, final=True)
        return delivery
    body, headers = _request(delivery)
    try:
        response = transport.post(url=endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    except transport.UnsafeDestination as exc:
        _failed(delivery, error=str(exc), final=True)
        return delivery
    except Exception as exc:  # network errors of every kind are a failed attempt, retried
        _failed(delivery, error=f"{type(exc).__name__}: {exc}")
        return delivery
    delivery.response_code, delivery.response_body_excerpt = response.status, response.body_excerpt
    if 200 <= response.status < 300:
        _delivered(delivery)
    elif response.status == 410:
        _failed(delivery, error="410 Gone", final=True)
        _disable(endpoint, "The endpoint answered 410 Gone")
    else:
        _failed(delivery, error=f"HTTP {response.status}")
    return delivery


def _delivered(delivery: WebhookDelivery) -> None:
    now = timezone.now()
    delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.last_error = Status.DELIVERED, now, None, ""
    delivery.save()  # the attempt was counted by _claim
    counter_add("webhook_deliveries", outcome="delivered")
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).exclude(failing_since=None).update(failing_since=None)


def _failed(delivery: WebhookDelivery, *, error: str, final: bool = False) -> None:
    """Record a failed attempt (counted by _claim) and when the next one is due, or the end."""
    now = timezone.now()
    schedule = settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
    delivery.last_error = error[:500]
    if final or delivery.attempts > len(schedule):
        delivery.status, delivery.next_attempt_at = Status.FAILED, None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=schedule[delivery.attempts - 1])
    delivery.save()
    counter_add("webhook_deliveries", outcome="failed" if delivery.status == Status.FAILED else "retry")
    endpoint = delivery.endpoint
    if final and error == "Endpoint disabled":
        return
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since=None).update(failing_since=now)
    endpoint.refresh_from_db(fields=["failing_since"])
    limit = timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    if endpoint.failing_since and now - endpoint.failing_since > limit:
        _disable(endpoint, f"Deliveries failing for more than {settings.WEBHOOK_DISABLE_AFTER_DAYS} days "
                           f"(since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC); last error: {error}")
