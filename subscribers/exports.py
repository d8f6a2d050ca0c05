"""CSV export of a list: dynamic columns, a server-side cursor, formula-injection-safe cells."""

import csv
import re
from collections.abc import Iterator

from django.db import transaction

from subscribers.models import Subscriber, SubscriberList
from subscribers.selectors import list_field_keys

BASE_COLUMNS = ("email", "phone", "name", "status", "created_at", "updated_at")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
# A plain signed number (an E.164 phone, a negative amount) is data, not a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def safe_cell(value: object) -> object:
    """Neutralise spreadsheet formulas (OWASP CSV injection): prefix a quote to text cells that
    a spreadsheet would evaluate. Numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(_FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def export_rows(subscriber_list: SubscriberList) -> Iterator[list]:
    standard, custom = list_field_keys(subscriber_list)
    yield [*BASE_COLUMNS, *standard, *custom]
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


class _Echo:
    """A file-like object whose write() returns the line, for csv.writer in a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterator[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(row)
