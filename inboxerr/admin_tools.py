"""Pieces the admin modules share: owner scoping, estimated counts on big tables, and turning a
service error into an admin message."""

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from inboxerr.actors import Actor
from inboxerr.errors import ServiceError


def admin_actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, source="admin")


class EstimatedCountPaginator(Paginator):
    """Admin paginator for tables of millions of rows: the unfiltered count comes from the
    planner's statistics, a filtered one is exact only up to a cap (see capped_count)."""

    @cached_property
    def count(self) -> int:
        from subscribers.selectors import capped_count

        query = self.object_list.query
        if connection.vendor == "postgresql" and not query.where:
            table = self.object_list.model._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
                row = cursor.fetchone()
            if row and row[0] > 10_000:
                return int(row[0])
        return capped_count(self.object_list)[0]


class OwnedAdmin(admin.ModelAdmin):
    """A non-superuser sees and picks only what they own. `owner_path` is the lookup from the
    model to its owning user."""

    owner_path = "owner"

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{self.owner_path: request.user})

    def report(self, request: HttpRequest, exc: ServiceError) -> None:
        self.message_user(request, exc.message, level=messages.ERROR)


def key_value_table(data: dict | None, depth: int = 0) -> SafeString | str:
    """A JSON object as a small table of names and values (nested objects nest), for the admin's
    read-only pages: people read words, not raw JSON. Every value is escaped."""
    if not data:
        return "-"
    rows = []
    for key, value in data.items():
        if isinstance(value, dict) and depth < 2:
            shown = key_value_table(value, depth + 1)
        elif isinstance(value, list | tuple):
            shown = ", ".join(str(item) for item in value) or "-"
        else:
            shown = "-" if value in (None, "") else str(value)
        rows.append((str(key).replace("_", " "), shown))
    body = format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", rows)
    return format_html('<table class="key-values">{}</table>', body)
