"""Webhook reads, owner-scoped: a non-superuser only ever sees their own endpoints."""

from django.db.models import QuerySet

from inboxerr.errors import NotFound
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint


def endpoints_for_user(user: object) -> QuerySet[WebhookEndpoint]:
    qs = WebhookEndpoint.objects.all()
    return qs if user.is_superuser else qs.filter(owner=user)


def endpoint_get(*, user: object, endpoint_id: int) -> WebhookEndpoint:
    endpoint = endpoints_for_user(user).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint")
    return endpoint


def deliveries_for_user(user: object) -> QuerySet[WebhookDelivery]:
    qs = WebhookDelivery.objects.select_related("endpoint")
    return qs if user.is_superuser else qs.filter(endpoint__owner=user)


def delivery_get(*, user: object, delivery_id: int) -> WebhookDelivery:
    delivery = deliveries_for_user(user).filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound("No such webhook delivery")
    return delivery
