"""Reads of subscribers and lists. Every function takes the user it reads for: a non-superuser
only ever sees their own lists, so an outsider's lookup fails exactly like a missing one."""

import json
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL

from inboxerr.errors import InvalidInput, NotFound
from inboxerr.storable import storable, unstorable_reason
from subscribers.models import Subscriber, SubscriberList, Suppression
from subscribers.normalize import RecordError, normalize_phone

SORTABLE_FIELDS = ("created_at", "updated_at", "email", "phone", "name", "status")
SEARCH_MODES = ("smart", "exact", "prefix", "contains")
_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{5,}$")


def lists_for_user(user) -> QuerySet[SubscriberList]:
    qs = SubscriberList.objects.select_related("owner")
    return qs if user.is_superuser else qs.filter(owner=user)


def subscribers_for_user(user) -> QuerySet[Subscriber]:
    qs = Subscriber.objects.all()
    return qs if user.is_superuser else qs.filter(list__owner=user)


def suppressions_for_user(user) -> QuerySet[Suppression]:
    qs = Suppression.objects.select_related("owner")
    return qs if user.is_superuser else qs.filter(owner=user)


def list_get(*, user, name: str, owner_username: str | None = None) -> SubscriberList:
    """The list called `name` that `user` may see.

    A superuser sees every owner's lists, where names may repeat: their own list wins, then the
    only list of that name; otherwise they must say whose (`owner_username`)."""
    if unstorable_reason(name):  # no list is called that, and the database cannot be asked
        raise NotFound(f"List '{storable(name)}' not found", field="list_name")
    lists = lists_for_user(user).filter(name=name)
    if owner_username:
        lists = lists.filter(owner__username=owner_username)
    found = list(lists[:50])
    if not found:
        raise NotFound(f"List '{name}' not found", field="list_name")
    if len(found) == 1:
        return found[0]
    mine = [lst for lst in found if lst.owner_id == user.pk]
    if mine:
        return mine[0]
    raise InvalidInput(
        f"Several owners have a list named '{name}'; pass owner=<username>", field="owner"
    )


def subscriber_get(*, user, subscriber_id: object) -> Subscriber:
    try:
        pk = int(str(subscriber_id))
    except ValueError:
        raise NotFound(f"Subscriber '{subscriber_id}' not found") from None
    subscriber = subscribers_for_user(user).select_related("list").filter(pk=pk).first()
    if subscriber is None:
        raise NotFound(f"Subscriber '{subscriber_id}' not found")
    return subscriber


def list_counts(*, user, simple: bool) -> list[dict]:
    """Every list the user can see with its subscriber count (a maintained counter, so this
    costs one indexed read per list however large the lists are)."""
    lists = lists_for_user(user).order_by("-subscriber_count", "name")
    if simple:
        return [{"name": lst.name, "count": lst.subscriber_count} for lst in lists.order_by("name")]
    return [
        {
            "id": lst.pk,
            "name": lst.name,
            "count": lst.subscriber_count,
            "description": lst.description,
            "key_field": lst.key_field,
            "owner": lst.owner.username,
            "created_at": lst.created_at,
        }
        for lst in lists
    ]


@dataclass(frozen=True)
class SearchQuery:
    search: str = ""
    list_name: str | None = None
    status: str | None = None
    page: int = 1
    limit: int = 50
    sort_by: str = "created_at"
    sort_order: str = "desc"
    search_mode: str = "smart"
    owner_username: str | None = None


def subscriber_search(*, user, query: SearchQuery) -> dict:
    """Seed 000 `GET /search`: filters, a smart strategy for the term, capped counting."""
    started = time.perf_counter()
    qs = subscribers_for_user(user)
    lists = lists_for_user(user)
    if query.list_name:
        lst = list_get(user=user, name=query.list_name, owner_username=query.owner_username)
        qs = Subscriber.objects.filter(list=lst)
        lists = SubscriberList.objects.filter(pk=lst.pk)
    if query.status:
        qs = qs.filter(status=query.status)
    strategy = "all"
    if query.search:
        strategy = search_strategy(query.search, query.search_mode)
        qs = qs.filter(search_filter(query.search, strategy, lists))

    if strategy == "all" and not query.status:
        # Nothing narrows the lists: their maintained counters are the exact total.
        total, estimated = lists.aggregate(n=Sum("subscriber_count"))["n"] or 0, False
    else:
        total, estimated = capped_count(qs)

    direction = "-" if query.sort_order == "desc" else ""
    offset = (query.page - 1) * query.limit
    page = list(
        qs.select_related("list").order_by(f"{direction}{query.sort_by}", f"{direction}id")[
            offset : offset + query.limit
        ]
    )
    total_pages = math.ceil(total / query.limit) if total else 0
    pagination = {
        "current_page": query.page,
        "total_pages": total_pages,
        "total": total,
        "limit": query.limit,
        "has_next": query.page < total_pages,
        "has_prev": query.page > 1,
    }
    if estimated:
        pagination["total_is_estimate"] = True
    return {
        "subscribers": page,
        "pagination": pagination,
        "performance": {
            "query_time": f"{time.perf_counter() - started:.3f}s",
            "strategy": strategy,
            "results_count": len(page),
        },
    }


def list_subscribers_page(*, subscriber_list: SubscriberList, page: int, limit: int, search: str) -> dict:
    """Seed 000 `GET /list/{list_name}`: one page of a list, newest first."""
    qs = Subscriber.objects.filter(list=subscriber_list)
    if search:
        term = search.strip()
        condition = Q(email__contains=term.lower()) | Q(name__icontains=term) | json_values_contain(term)
        if any(ch.isdigit() for ch in term):
            condition |= Q(phone__contains=term)
        qs = qs.filter(haystack_may_contain(term), condition)
        total, estimated = capped_count(qs)
    else:
        total, estimated = subscriber_list.subscriber_count, False
    offset = (page - 1) * limit
    rows = list(qs.order_by("-created_at", "-id")[offset : offset + limit])
    for row in rows:
        row.list = subscriber_list  # spare a join: every row is on this list
    total_pages = math.ceil(total / limit) if total else 0
    pagination = {
        "current_page": page,
        "total_pages": total_pages,
        "total": total,
        "page_size": limit,
        "has_more": page < total_pages,
    }
    if estimated:
        pagination["total_is_estimate"] = True
    return {"success": True, "subscribers": rows, "pagination": pagination}


def capped_count(qs: QuerySet) -> tuple[int, bool]:
    """Count exactly up to SEARCH_COUNT_CAP matches; past it, report the planner's estimate.

    An exact COUNT over a million matching rows costs a full scan on every page; an operator
    paging through a broad search needs "about 840,000", not that scan."""
    cap = settings.SEARCH_COUNT_CAP
    exact = qs.order_by()[: cap + 1].count()
    if exact <= cap:
        return exact, False
    return max(cap, _planner_estimate(qs)), True


def _planner_estimate(qs: QuerySet) -> int:
    if connection.vendor != "postgresql":
        return settings.SEARCH_COUNT_CAP
    sql, params = qs.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):  # psycopg may hand back the JSON as text
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def search_strategy(term: str, mode: str) -> str:
    """Seed 000's `analyze_search_specificity`: an address is looked up exactly, the start of
    one by prefix, digits as a phone number, anything else as free text."""
    if mode != "smart":
        return mode
    if "@" in term and " " not in term.strip():
        local, _, domain = term.strip().partition("@")
        return "exact" if local and "." in domain and not domain.endswith(".") else "prefix"
    if _PHONE_LIKE.match(term.strip()):
        return "phone"
    return "contains"


def search_filter(term: str, strategy: str, lists: QuerySet[SubscriberList] | None = None) -> Q:
    """The WHERE clause of a search, written so each branch has an index to use on PostgreSQL
    (see bench/RESULTS.md): email/phone pattern indexes for exact and prefix, trigram indexes on
    email and UPPER(name) for free text."""
    term = term.strip()
    lowered = term.lower()
    if strategy == "exact":
        condition = Q(email=lowered)
        phone = _as_phone(term)
        return condition | Q(phone=phone) if phone else condition
    if strategy == "prefix":
        condition = Q(email__startswith=lowered)
        if term[:1] == "+" or term[:1].isdigit():
            condition |= Q(phone__startswith=term if term[:1] == "+" else f"+{term}")
        return condition
    if strategy == "phone":
        phone = _as_phone(term)
        if phone:
            return Q(phone=phone)
        digits = re.sub(r"[^\d]", "", term)
        return Q(phone__startswith=f"+{digits}") if term.startswith("+") else Q(phone__contains=digits)
    condition = Q(email__contains=lowered) | Q(name__icontains=term)
    if lists is not None:
        matching_lists = list(lists.filter(name__icontains=term).values_list("pk", flat=True)[:100])
        if matching_lists:
            condition |= Q(list_id__in=matching_lists)
    return condition


def _as_phone(term: str) -> str:
    try:
        return normalize_phone(term)
    except RecordError:
        return ""


# Every searchable value of a subscriber in one string, under one trigram index (subscribers
# migration 0005, which must spell it exactly so): email, phone, name and the JSON-encoded array of
# its field values. JSON values are what a list page's search reads, and no index reaches into
# jsonb_each_text, so without this the search walks every row of the list.
SEARCH_HAYSTACK = (
    "(subscribers_subscriber.email || ' ' || subscribers_subscriber.phone || ' ' || subscribers_subscriber.name"
    " || ' ' || jsonb_path_query_array(subscribers_subscriber.standard_fields || subscribers_subscriber.custom_fields,"
    " 'strict $.*')::text)"
)


def haystack_may_contain(term: str) -> Q:
    """A condition every subscriber matching `term` in any searchable value meets, which the trigram
    index answers; the exact conditions run only on the rows it lets through.

    It is a filter in front of the exact search, never the search itself: the haystack joins values
    with spaces and quotes JSON strings, so it also matches across values, which the exact
    conditions then refuse. Where it could miss a match it stays out of the way: under three
    characters (no trigram to look up), characters JSON escapes, or SQLite (no such index)."""
    if (
        connection.vendor != "postgresql"
        or len(term) < 3
        or any(ch in '"\\' or ord(ch) < 0x20 for ch in term)
    ):
        return Q()
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Q(RawSQL(f"{SEARCH_HAYSTACK} ILIKE %s ESCAPE '\\'", (f"%{escaped}%",), output_field=BooleanField()))


def json_values_contain(term: str) -> Q:
    """Subscribers with a standard or custom field whose value (not key) contains `term`."""
    table = Subscriber._meta.db_table
    # The term is text to find, not a pattern: its own % and _ (and the escape) match themselves,
    # as they do in the ORM's lookups the other search conditions use.
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    if connection.vendor == "postgresql":
        sql = (
            f"EXISTS (SELECT 1 FROM jsonb_each_text({table}.standard_fields || {table}.custom_fields) AS f "
            "WHERE f.value ILIKE %s ESCAPE '\\')"
        )
    else:
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({table}.standard_fields) AS f WHERE f.value LIKE %s ESCAPE '\\') OR "
            f"EXISTS (SELECT 1 FROM json_each({table}.custom_fields) AS f WHERE f.value LIKE %s ESCAPE '\\')"
        )
        return Q(RawSQL(sql, (pattern, pattern), output_field=BooleanField()))
    return Q(RawSQL(sql, (pattern,), output_field=BooleanField()))


def analyze_fields(*, user, list_names: list[str]) -> dict:
    """Seed 000 `POST /analyze-fields`: which fields the chosen lists offer for merge fields.

    universal: the key field every chosen list shares; standard/custom: every key present in
    those JSON columns on any subscriber of those lists."""
    lists = [list_get(user=user, name=name) for name in list_names]
    key_fields = {lst.key_field for lst in lists}
    universal = sorted(key_fields) if len(key_fields) == 1 else []
    standard, custom = _json_keys([lst.pk for lst in lists])
    return {"universal": universal, "standard": standard, "custom": custom}


def _json_keys(list_ids: list[int]) -> tuple[list[str], list[str]]:
    """Distinct keys of standard_fields and custom_fields over the given lists. Two statements:
    each runs as a parallel scan on PostgreSQL, which one combined statement cannot (bench)."""
    return _column_keys(list_ids, "standard_fields"), _column_keys(list_ids, "custom_fields")


def _column_keys(list_ids: list[int], column: str) -> list[str]:
    if not list_ids:
        return []
    assert column in ("standard_fields", "custom_fields")
    table = Subscriber._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT DISTINCT jsonb_object_keys({column}) FROM {table} WHERE list_id = ANY(%s)", [list_ids])
        else:
            marks = ",".join(["%s"] * len(list_ids))
            cursor.execute(
                f"SELECT DISTINCT j.key FROM {table} s, json_each(s.{column}) AS j WHERE s.list_id IN ({marks})", list_ids
            )
        return sorted(row[0] for row in cursor.fetchall())


def list_field_keys(subscriber_list: SubscriberList) -> tuple[list[str], list[str]]:
    """The standard and custom field names used on one list (export columns)."""
    return _json_keys([subscriber_list.pk])


def user_by_username(username: str):
    # A name with a lone surrogate (a command's argument in another encoding than UTF-8) or a NUL
    # names nobody, and the database could not even be asked about it.
    user = None if unstorable_reason(username) else get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"User '{storable(username)}' not found", field="owner")
    return user

