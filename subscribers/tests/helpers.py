"""Small helpers shared by the subscribers API tests: URLs, data builders and a snapshot of the
stored state, so that a refused request can be shown to have changed nothing."""

import json


from audit.models import AuditLog
from imports.models import ImportJob
from subscribers.models import Subscriber, SubscriberList, Suppression
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

BASE = "/api/v1/subscribers/"
LISTS = f"{BASE}lists"
SEARCH = f"{BASE}search"
BULK = f"{BASE}bulk"
ANALYZE = f"{BASE}analyze-fields"
AUDIT = f"{BASE}audit/logs"
SUPPRESSIONS = "/api/v1/suppressions/"

PERMISSION_DENIED = "You do not have permission to perform this action."


def list_page_url(name: str) -> str:
    return f"{BASE}list/{name}"


def list_url(name: str) -> str:
    return f"{BASE}lists/{name}"


def export_url(name: str) -> str:
    return f"{BASE}lists/{name}/export"


def subscriber_url(pk: int) -> str:
    return f"{BASE}{pk}"


def status_url(pk: int) -> str:
    return f"{BASE}{pk}/status"


def make_list(owner, name: str = "News", **kwargs) -> SubscriberList:
    return SubscriberListFactory(owner=owner, name=name, **kwargs)


def add(subscriber_list: SubscriberList, **kwargs) -> Subscriber:
    """A subscriber built directly in the database (the factory keeps the list counter exact)."""
    return SubscriberFactory(list=subscriber_list, **kwargs)


def _dump(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def db_state() -> dict:
    """Everything a subscribers request could write, in a comparable form."""
    return {
        "lists": sorted(
            SubscriberList.objects.values_list("pk", "owner_id", "name", "description", "key_field", "subscriber_count")
        ),
        "subscribers": sorted(
            (pk, list_id, key, email, phone, name, status, _dump(std), _dump(cst), str(updated))
            for pk, list_id, key, email, phone, name, status, std, cst, updated in Subscriber.objects.values_list(
                "pk", "list_id", "key", "email", "phone", "name", "status", "standard_fields", "custom_fields",
                "updated_at",
            )
        ),
        "suppressions": sorted(Suppression.objects.values_list("pk", "owner_id", "channel", "address", "reason")),
        "import_jobs": sorted((str(pk), status) for pk, status in ImportJob.objects.values_list("pk", "status")),
        "audit_rows": AuditLog.objects.count(),
    }


def post_raw(client, url: str, body: str, method: str = "POST"):
    """Send a body exactly as written (for malformed JSON and numbers Python would not emit)."""
    return client.generic(method, url, body, content_type="application/json")
