"""CSV export of a list: dynamic columns, a server-side cursor, formula-injection-safe cells
(header cells too: the field keys that name the columns came from imports and API callers)."""

from collections.abc import Iterator

from django.db import transaction

from inboxerr.csvsafe import safe_cell
from subscribers.models import Subscriber, SubscriberList
from subscribers.selectors import list_field_keys

BASE_COLUMNS = ("email", "phone", "name", "status", "created_at", "updated_at")


def export_rows(subscriber_list: SubscriberList) -> Iterator[list]:
    standard, custom = list_field_keys(subscriber_list)
    yield [*BASE_COLUMNS, *map(safe_cell, standard), *map(safe_cell, custom)]
    rows = (
        Subscriber.objects.filter(list=subscriber_list)
        .order_by("id")
        .values_list("email", "phone", "name", "status", "created_at", "updated_at", "standard_fields", "custom_fields")
    )
    # Inside a transaction the server-side cursor is a plain one; outside, Django must declare it
    # WITH HOLD and PostgreSQL materialises the whole result to disk first (240 MB at 900k rows).
    with transaction.atomic():
        for email, phone, name, status, created_at, updated_at, std, cst in rows.iterator(chunk_size=5000):
            yield [
                safe_cell(email),
                safe_cell(phone),
                safe_cell(name),
                status,
                created_at.isoformat(),
                updated_at.isoformat(),
                *(safe_cell(std.get(key)) for key in standard),
                *(safe_cell(cst.get(key)) for key in custom),
            ]
