"""Another owner's object answers exactly as an object that does not exist, on every address.

The routes come from the URL configuration itself (`get_resolver()`, plus the WebSocket routes
of `inboxerr.asgi`): every route with a path parameter that names an object (an id, a pk, a list
name, a batch id, a token, a URL) is requested, with each method its view allows, by a second
operator with the same permissions as the owner (an API token for the API, an admin session for
the console), and the answer must be the one an id that does not exist gets: the same status, the
same body and redirect, the same admin message, with the id swapped. Nothing in the database may
change. An anonymous caller gets 401/403 from the API and the login page from the admin, and the
owner gets the object (so the sweep is not comparing two misses).

`SWEEP` says how to make an owner's object for each route; `NOT_OWNED` lists the routes whose
parameter names nothing an owner owns, with the reason. A new route with an object parameter
that is in neither fails `test_every_route_naming_an_object_is_in_the_sweep`, which says what to
add.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import RoutePattern
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import AuditLog
from campaigns import batches, bulk_email
from campaigns import services as campaign_services
from campaigns.models import Message
from imports.models import ImportStatus
from imports.tests.support import pending_job, set_state
from inboxerr.accounts import api_token_create
from inboxerr.actors import Actor
from inboxerr.progress import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from inboxerr.webhooks import services as webhook_services
from inboxerr.webhooks.models import WebhookDelivery
from inboxerr.tests.websockets import handshake
from subscribers import services as subscriber_services

pytestmark = pytest.mark.django_db

# Path parameters that choose among fixed values, not objects: a route with only these (the API
# root's format suffix) names nothing, and a route with an object parameter gets them filled in.
NON_OBJECT_PARAMS = {"format": "json", "verb": None, "status": None}
API_METHODS = ("get", "put", "patch", "post", "delete")

# Ids that exist nowhere, in the shape of each kind of id.
MISSING_INT = 2_147_483_647
MISSING_UUID = "deadbeef-0000-4000-8000-00000000dead"
MISSING_BATCH_ID = "deadbeefdeadbeef"
MISSING_NAME = "no-such-list"
MISSING_URL = "https://hooks.example.com/no-such-hook"
MISSING_DIGEST = "dead" * 32
MISSING_UPLOAD = "deadbeef" * 4


# --- The routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # "namespace:name", or the whole pattern when the route has no name
    parts: tuple  # the patterns from the root down, to build an address
    params: tuple[str, ...]
    callback: Callable | None
    kind: str  # api, admin, ws or site

    @property
    def pattern(self) -> str:
        return "".join(str(p) for p in self.parts)

    @property
    def object_params(self) -> set[str]:
        return set(self.params) - set(NON_OBJECT_PARAMS)


def _params(pattern) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return re.findall(r"<(?:\w+:)?(\w+)>", str(pattern))
    return list(re.compile(str(pattern)).groupindex)


def _kind(path: str) -> str:
    if path.startswith("admin/"):
        return "admin"
    if path.startswith("api/"):
        return "api"
    return "site"


def _walk(resolver: URLResolver, parts: tuple = (), namespace: str = "") -> Iterator[Route]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else (entry.namespace or namespace)
            yield from _walk(entry, (*parts, entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            all_parts = (*parts, entry.pattern)
            params = tuple(p for part in all_parts for p in _params(part))
            pattern = "".join(str(p) for p in all_parts)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield Route(name or pattern, all_parts, params, entry.callback, _kind(pattern))


def _websocket_routes() -> Iterator[Route]:
    from inboxerr.asgi import websocket_urlpatterns

    for entry in websocket_urlpatterns:
        yield Route(str(entry.pattern), (entry.pattern,), tuple(_params(entry.pattern)), None, "ws")


ROUTES = [*_walk(get_resolver()), *_websocket_routes()]


def _render(route: Route, kwargs: dict) -> str:
    """The address of `route` with `kwargs` in its parameters."""
    path = ""
    for part in route.parts:
        text = str(part)
        if isinstance(part, RoutePattern):
            text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: quote(str(kwargs[m.group(1)]), safe=""), text)
        else:
            text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: quote(str(kwargs[m.group(1)]), safe=""), text)
            text = re.sub(r"\(\?:[^)]*\)\?", "", text)  # an optional prefix: the shortest address
            text = text.removeprefix("^").removesuffix("$").removesuffix("/?").replace("\\.", ".")
        path += text
    return "/" + path


def _allowed_methods(route: Route) -> tuple[str, ...]:
    """What the view answers, read from the view: a viewset's actions, an APIView's handlers."""
    callback = route.callback
    actions = getattr(callback, "actions", None)
    if actions:
        return tuple(m for m in API_METHODS if m in actions)
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        raise AssertionError(f"{route.key}: cannot tell which methods the view allows; list them in SWEEP")
    return tuple(m for m in API_METHODS if hasattr(view_class, m))


# --- The world each case builds ----------------------------------------------------------------------


class World:
    """The owner and the outsider (operators with the same permissions), their clients, and the
    owner's objects, made on demand through the services the product uses."""

    def __init__(self, owner, outsider, tmp_path) -> None:
        self.owner, self.outsider, self.tmp_path = owner, outsider, tmp_path
        self.actor = Actor(user=owner, source="api")
        self._cache: dict[str, object] = {}
        self.owner_admin = self._browser(owner)
        self.outsider_admin = self._browser(outsider)
        self.owner_token, self.outsider_token = self._token(owner), self._token(outsider)
        self.owner_api, self.outsider_api = self._api(self.owner_token), self._api(self.outsider_token)

    @staticmethod
    def _browser(user) -> Client:
        # CSRF is not enforced: a refusal must come from the view's own checks, not the token's.
        client = Client()
        client.force_login(user)
        return client

    @staticmethod
    def _token(user) -> str:
        return api_token_create(actor=Actor(user=user, source="command"), username=user.username)[1]

    @staticmethod
    def _api(token: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client

    def _once(self, name: str, make: Callable[[], object]):
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    # The owner's objects, each made once per case.

    def subscriber_list(self):
        return self._once("list", lambda: subscriber_services.list_create(
            actor=self.actor, owner=self.owner, name="sweep-list"))

    def subscriber(self):
        self.subscriber_list()
        return self._once("subscriber", lambda: subscriber_services.subscriber_create(
            actor=self.actor, owner=self.owner, list_name="sweep-list",
            record={"email": "ann@example.com", "name": "Ann"}))

    def suppression(self):
        return self._once("suppression", lambda: subscriber_services.suppression_create(
            actor=self.actor, owner=self.owner, channel="email", address="gone@example.com"))

    def template(self):
        return self._once("template", lambda: campaign_services.template_create(
            actor=self.actor, owner=self.owner, name="Sweep", subject="Hi", body_text="Hi {{ name }}"))

    def campaign(self):
        self.subscriber()
        return self._once("campaign", lambda: campaign_services.campaign_create(
            actor=self.actor, owner=self.owner, name="Sweep", channel="email", subject="Hi",
            message_content="Hi {{ name }}", list_names=["sweep-list"]))

    def bulk_job(self):
        return self._once("bulk_job", lambda: bulk_email.bulk_reminder_start(
            actor=self.actor, owner=self.owner, emails=["ann@example.com", "bo@example.com"]))

    def message(self):
        return Message.objects.filter(campaign=self.bulk_job()).order_by("pk").first()

    def batch(self):
        return self._once("batch", lambda: batches.batch_ingest(actor=self.actor, owner=self.owner, items=[
            {"request_id": "r1", "channel": "email", "recipient": "ann@example.com", "content": "Hi", "subject": "Hi"},
        ]))

    def import_job(self, status: str = ImportStatus.PENDING):
        job = self._once("import", lambda: pending_job(self.owner, self.tmp_path, list_name="sweep-list"))
        return set_state(job, status=status) if job.status != status else job

    def endpoint(self):
        return self._once("endpoint", lambda: webhook_services.endpoint_create(
            actor=self.actor, owner=self.owner, url="https://hooks.example.com/in"))

    def delivery(self):
        endpoint = self.endpoint()

        def emit():
            with transaction.atomic():
                webhook_services.event_emit(event="import.completed", owner_id=self.owner.pk, payload={"job_id": 1})
            return WebhookDelivery.objects.get(endpoint=endpoint)

        return self._once("delivery", emit)

    def audit_row(self):
        self.subscriber_list()
        return AuditLog.objects.filter(owner=self.owner, entity_type="list").get()

    def auth_token(self):
        # The token admin is not the operators' by default: both peers get the same rights on it.
        tokens = Permission.objects.filter(content_type__app_label="knox", codename__in=["view_authtoken", "delete_authtoken"])
        self.owner.user_permissions.add(*tokens)
        self.outsider.user_permissions.add(*tokens)
        return AuthToken.objects.get(user=self.owner)

    def upload_token(self, *, mapped: bool) -> str:
        """A file the owner uploaded in the admin's import wizard (it lives in their session)."""
        def upload():
            url = reverse("admin:imports_importjob_upload") + f"?list={self.subscriber_list().pk}"
            response = self.owner_admin.post(url, {"file": SimpleUploadedFile("people.csv", b"email,name\na@x.io,Ann\n")})
            assert response.status_code == 302, response.status_code
            return resolve(response["Location"]).kwargs["token"]

        token = self._once("upload", upload)
        if mapped and "mapped" not in self._cache:
            response = self.owner_admin.post(reverse("admin:imports_importjob_mapping", args=[token]),
                                             {"col_0": "email", "col_1": "name"})
            assert response.status_code == 302, response.status_code
            self._cache["mapped"] = True
        return token


# --- What to make for each route ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    kwargs: dict  # the route's parameters for the owner's object
    missing: dict  # the same for an object that does not exist


@dataclass(frozen=True)
class Sweep:
    make: Callable[[World], Target]
    methods: tuple[str, ...] | None = None  # None: what the view allows
    bodies: dict[str, dict] = field(default_factory=dict)  # a valid body, so a refusal is about the object
    owner_status: int = 200  # what the owner's GET answers (the object is real)


def _pk(get: Callable[[World], models.Model], missing: object = MISSING_INT, param: str = "pk", **extra):
    def make(world: World) -> Target:
        return Target({param: get(world).pk, **extra}, {param: missing, **extra})

    return make


def _value(get: Callable[[World], object], missing: object, param: str, **extra):
    def make(world: World) -> Target:
        return Target({param: get(world), **extra}, {param: missing, **extra})

    return make


def one(make, **options) -> dict[str, Sweep]:
    return {"": Sweep(make, **options)}


TEMPLATE_BODY = {"name": "Renamed", "channel": "email", "subject": "Hi", "body_text": "Hi"}
HOOK_BODY = {"url": "https://hooks.example.com/changed", "events": [], "is_active": True}

API_SWEEP: dict[str, dict[str, Sweep]] = {
    # Subscribers and lists
    "list-detail": one(_value(lambda w: w.subscriber_list().name, MISSING_NAME, "list_name")),
    "list-export": one(_value(lambda w: w.subscriber_list().name, MISSING_NAME, "list_name")),
    "list-page": one(_value(lambda w: w.subscriber_list().name, MISSING_NAME, "list_name")),
    "subscriber-detail": one(_pk(World.subscriber, param="subscriber_id"), bodies={"put": {"name": "Renamed"}}),
    "subscriber-status": one(_pk(World.subscriber, param="subscriber_id"), bodies={"patch": {"status": "unsubscribed"}}),
    "suppression-detail": one(_pk(World.suppression)),
    # Imports
    "import-detail": one(_pk(World.import_job, MISSING_UUID, "job_id")),
    "import-contacts": one(_pk(World.import_job, MISSING_UUID, "job_id")),
    "import-errors": one(_pk(World.import_job, MISSING_UUID, "job_id")),
    "import-cancel": one(_pk(World.import_job, MISSING_UUID, "job_id")),
    "job-force-retry": one(_pk(lambda w: w.import_job(ImportStatus.FAILED), MISSING_UUID, "job_id")),
    # Templates and campaigns
    "template-detail": one(_pk(World.template), bodies={"put": TEMPLATE_BODY, "patch": {"name": "Renamed"}}),
    **{name: one(_pk(World.campaign, MISSING_UUID, "campaign_id")) for name in (
        "campaign-detail", "campaign-start", "campaign-pause", "campaign-resume", "campaign-cancel",
        "campaign-messages", "campaign-retry-failed", "campaign-preview", "campaign-dry-run")},
    "campaign-test-send": one(_pk(World.campaign, MISSING_UUID, "campaign_id"),
                              bodies={"post": {"recipient": "test@example.com"}}),
    # Bulk email jobs and batches
    "bulk-email-job-status": one(_pk(World.bulk_job, MISSING_UUID, "job_id")),
    "bulk-email-job-cancel": one(_pk(World.bulk_job, MISSING_UUID, "job_id")),
    **{name: one(_value(lambda w: w.batch().batch_id, MISSING_BATCH_ID, "batch_id")) for name in (
        "outbox-batch-status", "outbox-batch-items", "outbox-batch-retry")},
    # The one tracker, for each kind of task
    "task-detail": {
        "import": Sweep(_pk(World.import_job, MISSING_UUID, "task_id")),
        "campaign": Sweep(_pk(World.campaign, MISSING_UUID, "task_id")),
        "bulk_email": Sweep(_pk(World.bulk_job, MISSING_UUID, "task_id")),
        "batch": Sweep(_value(lambda w: w.batch().batch_id, MISSING_BATCH_ID, "task_id")),
    },
    # Webhooks
    "webhook-detail": one(_pk(World.endpoint, param="endpoint_id"),
                          bodies={"put": HOOK_BODY, "patch": {"is_active": False}}),
    "webhook-rotate-secret": one(_pk(World.endpoint, param="endpoint_id")),
    "webhook-deliveries": one(_pk(World.endpoint, param="endpoint_id")),
    "webhook-seed-update": one(_pk(World.endpoint, param="endpoint_id", status="inactive")),
    "webhook-seed-delete": one(_value(lambda w: w.endpoint().url, MISSING_URL, "url")),
    "webhook-delivery-replay": one(_pk(World.delivery, param="delivery_id")),
}

# The console: every owned model's object pages. The model's object (and where it lives) per label.
OWNED_ADMIN_OBJECTS: dict[str, tuple[Callable[[World], models.Model], object]] = {
    "subscribers.subscriberlist": (World.subscriber_list, MISSING_INT),
    "subscribers.subscriber": (World.subscriber, MISSING_INT),
    "subscribers.suppression": (World.suppression, MISSING_INT),
    "imports.importjob": (World.import_job, MISSING_UUID),
    "campaigns.messagetemplate": (World.template, MISSING_INT),
    "campaigns.campaign": (World.campaign, MISSING_UUID),
    "campaigns.message": (World.message, MISSING_INT),
    "campaigns.messagebatch": (World.batch, MISSING_INT),
    "webhooks.webhookendpoint": (World.endpoint, MISSING_INT),
    "webhooks.webhookdelivery": (World.delivery, MISSING_INT),
    "audit.auditlog": (World.audit_row, MISSING_INT),
    "knox.authtoken": (World.auth_token, MISSING_DIGEST),
}
# Pages an owner may not use on their own object either (the same refusal for everyone).
OWNER_REFUSED = {
    "admin:audit_auditlog_delete": 403,  # audit rows leave only through purge_audit
    "admin:subscribers_subscriberlist_delete": 403,  # lists go through "Delete list safely"
    "admin:campaigns_messagebatch_delete": 403,  # a batch's items are kept until messages are purged
}
# No model has get_absolute_url, so "view on site" is a 404 for everyone; the day one has, an
# outsider must still get the 404 a missing object gets, which this sweep checks.
VIEW_ON_SITE_STATUS = 404

# Models the console shows that belong to nobody in particular: the shared configuration and the
# superusers' pages. Operators either cannot open them or share them on purpose.
NOT_OWNED_MODELS = {
    "auth.group": "roles: superusers only",
    "auth.user": "users: superusers only",
    "django_q.schedule": "the workers' schedule: superusers only",
    "django_q.success": "worker task results: superusers only",
    "django_q.failure": "worker task failures: superusers only",
    "django_q.ormq": "the worker queue: superusers only",
    "inboxerr.workerheartbeat": "worker heartbeats, shared by everyone",
    "campaigns.ratelimit": "the channels' rate limits, shared by every owner",
    "axes.accessattempt": "failed admin logins (django-axes): superusers only",
    "campaigns.outboxswitch": "the outbox switch, shared by every owner",
}


def _admin_prefix(label: str) -> str:
    app_label, model_name = label.split(".")
    return f"admin/{app_label}/{model_name}/"


def _admin_sweep() -> dict[str, dict[str, Sweep]]:
    table: dict[str, dict[str, Sweep]] = {}
    for label, (get, missing) in OWNED_ADMIN_OBJECTS.items():
        name = label.replace(".", "_")
        make = _pk(get, missing, "object_id")
        table[f"admin:{name}_change"] = one(make, methods=("get", "post"))
        table[f"admin:{name}_delete"] = one(make, methods=("get", "post"),
                                            owner_status=OWNER_REFUSED.get(f"admin:{name}_delete", 200))
        table[f"admin:{name}_history"] = one(make, methods=("get",))
        # Django's old address of the change page: a redirect to it, for any id.
        table[f"{_admin_prefix(label)}<path:object_id>/"] = one(make, methods=("get",), owner_status=302)

    def on_site(get, missing):
        def make(world: World) -> Target:
            obj = get(world)
            content_type = ContentType.objects.get_for_model(obj).pk
            return Target({"content_type_id": content_type, "object_id": obj.pk},
                          {"content_type_id": content_type, "object_id": missing})
        return make

    table["admin:view_on_site"] = {
        label: Sweep(on_site(get, missing), methods=("get",), owner_status=VIEW_ON_SITE_STATUS)
        for label, (get, missing) in OWNED_ADMIN_OBJECTS.items()
    }
    # Job pages' buttons, one case per button.
    table["admin:imports_importjob_job_control"] = {
        "cancel": Sweep(_pk(World.import_job, MISSING_UUID, "object_id", verb="cancel"), methods=("post",)),
        "retry": Sweep(_pk(lambda w: w.import_job(ImportStatus.FAILED), MISSING_UUID, "object_id", verb="retry"),
                       methods=("post",)),
    }
    table["admin:campaigns_campaign_job_control"] = {
        verb: Sweep(_pk(World.campaign, MISSING_UUID, "object_id", verb=verb), methods=("post",))
        for verb in ("pause", "resume", "retry-failed", "cancel")
    }
    table["admin:campaigns_campaign_job_control"]["bulk_email-cancel"] = Sweep(
        _pk(World.bulk_job, MISSING_UUID, "object_id", verb="cancel"), methods=("post",))
    table["admin:campaigns_messagebatch_job_control"] = {
        "retry": Sweep(_pk(World.batch, MISSING_INT, "object_id", verb="retry"), methods=("post",)),
    }
    # The campaign wizard's steps on a draft.
    table["admin:campaigns_campaign_dry_run"] = one(_pk(World.campaign, MISSING_UUID, "object_id"), methods=("get",))
    for name in ("admin:campaigns_campaign_test_send", "admin:campaigns_campaign_confirm_start"):
        table[name] = one(_pk(World.campaign, MISSING_UUID, "object_id"), methods=("get", "post"))
    # The import wizard's steps on an upload (its token lives in the uploader's session).
    table["admin:imports_importjob_mapping"] = one(
        _value(lambda w: w.upload_token(mapped=False), MISSING_UPLOAD, "token"), methods=("get", "post"))
    table["admin:imports_importjob_options"] = one(
        _value(lambda w: w.upload_token(mapped=True), MISSING_UPLOAD, "token"), methods=("get", "post"))
    table["admin:imports_importjob_discard"] = one(
        _value(lambda w: w.upload_token(mapped=False), MISSING_UPLOAD, "token"), methods=("post",))
    return table


WS_SWEEP: dict[str, dict[str, Sweep]] = {
    pattern: {
        "import": Sweep(_pk(World.import_job, MISSING_UUID, "job_id"), methods=("connect",)),
        "campaign": Sweep(_pk(World.campaign, MISSING_UUID, "job_id"), methods=("connect",)),
        "bulk_email": Sweep(_pk(World.bulk_job, MISSING_UUID, "job_id"), methods=("connect",)),
        "batch": Sweep(_value(lambda w: w.batch().batch_id, MISSING_BATCH_ID, "job_id"), methods=("connect",)),
    }
    for pattern in ("ws/jobs/<str:job_id>/", r"^(?:api/v1/)?webhooks/task-monitor/(?P<job_id>[^/]+)/?$")
}

SWEEP: dict[str, dict[str, Sweep]] = {**API_SWEEP, **_admin_sweep(), **WS_SWEEP}

# Routes whose parameters name nothing an owner owns, and why.
NOT_OWNED: dict[str, str] = {
    "unsubscribe": "a signed capability for one recipient: whoever holds the link may use it "
                   "(forged and tampered tokens: campaigns/tests/test_unsubscribe.py)",
    "admin:app_list": "an app's index: the app label names no object",
    "admin/(?P<url>.*)$": "the admin's catch-all for addresses that match nothing",
    "admin:auth_user_password_change": "another user's password: superusers only",
    **{key: reason for label, reason in NOT_OWNED_MODELS.items() for key in (
        f"admin:{label.replace('.', '_')}_change", f"admin:{label.replace('.', '_')}_delete",
        f"admin:{label.replace('.', '_')}_history", f"{_admin_prefix(label)}<path:object_id>/")},
}

OBJECT_ROUTES = [route for route in ROUTES if route.object_params]


def test_every_route_naming_an_object_is_in_the_sweep():
    unknown = sorted({route.key for route in OBJECT_ROUTES if route.key not in SWEEP and route.key not in NOT_OWNED})
    assert not unknown, (
        "These routes take an object's id but the owner sweep cannot fill them: add each to SWEEP in "
        "inboxerr/tests/test_owner_sweep.py (a function making an owner's object and the route's parameters "
        "for it and for a missing one), or to NOT_OWNED with the reason nobody owns what it names:\n  "
        + "\n  ".join(unknown)
    )
    keys = {route.key for route in ROUTES}
    stale = sorted(set(SWEEP) - keys) + sorted(set(NOT_OWNED) - keys)
    assert not stale, f"SWEEP or NOT_OWNED name routes that no longer exist: {stale}"


def test_the_sweep_covers_the_api_the_console_and_the_websockets():
    # A guard on the walk itself: if it stopped seeing a part of the site, the check above would
    # pass on nothing.
    swept = {route.key: route.kind for route in OBJECT_ROUTES if route.key in SWEEP}
    assert set(swept.values()) == {"api", "admin", "ws"}
    assert {"subscriber-detail", "suppression-detail", "campaign-start", "task-detail", "webhook-seed-delete",
            "admin:campaigns_campaign_change", "admin:imports_importjob_mapping", "ws/jobs/<str:job_id>/"} <= set(swept)


@dataclass(frozen=True)
class Case:
    route: Route
    variant: str
    method: str

    @property
    def sweep(self) -> Sweep:
        return SWEEP[self.route.key][self.variant]

    def __str__(self) -> str:
        variant = f"[{self.variant}]" if self.variant else ""
        suffix = ".format" if "format" in self.route.params else ""  # a router's second address
        return f"{self.route.key}{suffix}{variant}-{self.method.upper()}"


def _cases(kind: str) -> list[Case]:
    cases = []
    for route in OBJECT_ROUTES:
        if route.key not in SWEEP or (route.kind == "ws") != (kind == "ws"):
            continue
        for variant, sweep in SWEEP[route.key].items():
            for method in sweep.methods or _allowed_methods(route):
                cases.append(Case(route, variant, method))
    return cases


# --- Answers and state -------------------------------------------------------------------------------


def _snapshot(ignore_session: str | None = None) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of its rows (many-to-many tables too), in one query."""
    selects, params = [], []
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if opts.proxy or not opts.managed:
            continue
        where = ""
        params.append(opts.label)
        if model is Session and ignore_session:
            where = " WHERE session_key <> %s"  # the caller's own session (the messages it carries)
            params.append(ignore_session)
        selects.append(f"SELECT %s, count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                       f"FROM {connection.ops.quote_name(opts.db_table)} t{where}")
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects), params)
        return {label: (count, digest) for label, count, digest in cursor.fetchall()}


def _changes(before: dict, after: dict) -> list[str]:
    return [f"{label}: {before[label][0]} rows, now {after[label][0]}{'' if before[label][0] != after[label][0] else ' changed'}"
            for label in before if before[label] != after[label]]


def _messages(response) -> list[str]:
    morsel = response.cookies.get("messages")
    if morsel is None or not morsel.value:
        return []
    return [str(message) for message in CookieStorage(HttpRequest())._decode(morsel.value) or []]


def _answer(response) -> dict:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return {"status": response.status_code, "content_type": response.get("Content-Type", ""),
            "location": response.get("Location", ""), "body": body.decode("utf-8", "replace"),
            "messages": _messages(response)}


def _swap(answer: dict, missing: dict, real: dict) -> dict:
    """A missing object's answer as it would read for the real object: each missing id (as
    written, and as quoted in an address) replaced by the real one."""
    def swap(text: str) -> str:
        for name, value in missing.items():
            if name not in NON_OBJECT_PARAMS:
                text = text.replace(quote(str(value), safe=""), quote(str(real[name]), safe=""))
                text = text.replace(str(value), str(real[name]))
        return text

    return {key: [swap(m) for m in value] if isinstance(value, list) else swap(value) if isinstance(value, str) else value
            for key, value in answer.items()}


def _call(client, route: Route, method: str, url: str, body: dict | None):
    client.cookies.pop("messages", None)  # each answer's own messages, not those left unread before
    if route.kind == "admin":
        return getattr(client, method)(url, body or {})
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def _full_kwargs(route: Route, kwargs: dict) -> dict:
    filled = {name: value for name, value in NON_OBJECT_PARAMS.items() if name in route.params and value is not None}
    return {**filled, **kwargs}


@pytest.fixture
def world(owner, outsider, tmp_path, settings) -> World:
    settings.IMPORT_DIR = tmp_path / "imports"
    return World(owner, outsider, tmp_path)


@pytest.mark.parametrize("case", _cases("http"), ids=str)
def test_another_owner_gets_what_a_missing_object_gets(case: Case, world: World):
    route, sweep, method = case.route, case.sweep, case.method
    target = sweep.make(world)
    real, missing = _full_kwargs(route, target.kwargs), _full_kwargs(route, target.missing)
    url, missing_url = _render(route, real), _render(route, missing)
    match = resolve(unquote(url))
    assert (match.func, {k: str(v) for k, v in match.kwargs.items()}) == (
        route.callback, {k: str(v) for k, v in real.items()}), f"{url} does not resolve to {route.pattern}"
    body = sweep.bodies.get(method)
    admin = route.kind == "admin"
    outsider = world.outsider_admin if admin else world.outsider_api
    owner = world.owner_admin if admin else world.owner_api
    outsider_session = outsider.session.session_key if admin else None

    before = _snapshot(outsider_session)
    as_outsider = _answer(_call(outsider, route, method, url, body))
    changed = _changes(before, _snapshot(outsider_session))
    assert not changed, f"{method.upper()} {url} by another owner changed data: {changed}"
    as_missing = _answer(_call(outsider, route, method, missing_url, body))
    assert as_outsider["status"] < 500, as_outsider
    assert as_outsider == _swap(as_missing, missing, real), (
        f"{method.upper()} {url}: another owner's object answers differently from a missing one")

    anonymous = _call(Client() if admin else APIClient(), route, method, url, body)
    if admin:
        assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("admin:login")), \
            (anonymous.status_code, anonymous.get("Location"))
    else:
        assert anonymous.status_code in (401, 403), anonymous.status_code
    changed = _changes(before, _snapshot(outsider_session))
    assert not changed, f"{method.upper()} {url} by a missing id or an anonymous caller changed data: {changed}"

    # Last, the owner: their object is real (a GET shows it; another method does something else
    # than a missing object's answer).
    if "get" in (sweep.methods or _allowed_methods(route)):
        response = owner.get(url)
        assert response.status_code == sweep.owner_status, (url, response.status_code)
    else:
        as_owner = _answer(_call(owner, route, method, url, body))
        assert as_owner["status"] < 500 and as_owner != as_outsider, (url, as_owner["status"])


# --- WebSockets --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the consumer reads through its own connection
@pytest.mark.parametrize("case", _cases("ws"), ids=str)
def test_another_owner_cannot_follow_a_job_over_websocket(case: Case, world: World):
    target = case.sweep.make(world)
    url, missing_url = _render(case.route, target.kwargs), _render(case.route, target.missing)
    before = _snapshot()

    def as_user(token: str, path: str):
        return handshake(path, [(b"authorization", f"Token {token}".encode())])

    as_outsider, as_missing = as_user(world.outsider_token, url), as_user(world.outsider_token, missing_url)
    anonymous = handshake(url, [(b"origin", b"http://localhost")])

    assert as_outsider[:2] == as_missing[:2] == (False, CLOSE_NOT_FOUND)
    assert anonymous[:2] == (False, CLOSE_UNAUTHENTICATED)
    changed = _changes(before, _snapshot())
    assert not changed, changed
    connected, _, first = as_user(world.owner_token, url)
    assert connected and first["id"] == str(next(iter(target.kwargs.values())))
