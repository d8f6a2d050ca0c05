"""The API against its own OpenAPI schema: schemathesis calls every operation of /api/schema/ on a
real server process (`runserver`, ASGI, DEBUG off) with data the schema allows and data it
refuses, authenticated with a real API token, over data of two owners so that the ids in paths
name real objects (the caller's, and another owner's, which must answer 404).

Every answer is checked: no server error, a status code the operation declares, a body that
matches the declared schema (errors included: the Error component), a request the schema calls
valid accepted, one it calls invalid refused. Each operation is one subtest named after it; at
the end the operations called are counted against the schema's (and printed).

The budget: MAX_EXAMPLES per operation in the fuzzing phase, plus schemathesis's examples and
coverage phases (each boundary of each parameter once), about 3,000 requests in all; no deadline
per request, and nothing here asserts on time.
"""

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
)

from imports import pipeline
from imports.services import import_create, store_local_file
from inboxerr.accounts import api_token_create
from inboxerr.actors import Actor
from inboxerr.tests.api_server import api_server as running_api_server
from inboxerr.tests.factories import UserFactory

# The server must see the seeded data (committed); the database is restored as migrated afterwards
# (content types, permissions), as the browser tests that follow expect to find it.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MAX_EXAMPLES = 5
SMS_SECRET = "contract-test-secret"


@dataclass
class ApiServer:
    base: str
    token: str
    # Path parameter name -> values naming real objects: the caller's first, then another owner's.
    ids: dict[str, list] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)  # every operation of the schema
    operations: set[str] = field(default_factory=set)  # the operations called
    cases: int = 0


def _seed(owner, tmp_path: Path) -> dict[str, list]:
    """One owner's objects, made through the API (and the import pipeline) as a client would."""
    client = APIClient()
    client.force_authenticate(owner)
    tag = owner.username

    def post(url: str, body: object, status: int = 201) -> dict:
        response = client.post(url, body, format="json")
        assert response.status_code == status, (url, response.content[:500])
        return response.json()

    post("/api/v1/subscribers/lists", {"name": f"{tag} news"})
    post("/api/v1/subscribers/bulk", {"list_name": f"{tag} news", "subscribers": [
        {"email": f"ann.{tag}@example.com", "name": "Ann", "first_name": "Ann"},
        {"email": f"bo.{tag}@example.com", "name": "Bo", "plan": "gold"},
    ]}, status=200)
    subscriber = post("/api/v1/subscribers/", {"list": f"{tag} news", "email": f"cy.{tag}@example.com", "name": "Cy"})
    suppression = post("/api/v1/suppressions/", {"channel": "email", "address": f"gone.{tag}@example.com"})
    template = post("/api/v1/templates/", {"name": f"{tag} welcome", "subject": "Hi {{ name }}",
                                           "body_text": "Hello {{ name }}", "body_html": "<p>Hello {{ name }}</p>"})
    campaign = post("/api/v1/campaigns", {"name": f"{tag} launch", "channel": "email", "template_id": template["id"],
                                          "list_names": [f"{tag} news"]})
    endpoint = post("/api/v1/webhooks/", {"url": f"https://hooks.example.com/{tag}", "events": []})
    batch = post("/api/v1/batch/process", [
        {"request_id": "1", "channel": "email", "recipient": f"ann.{tag}@example.com", "subject": "Code",
         "content": "Code {{ code }}", "variables": {"code": "1"}}], status=200)["data"]
    bulk_job = post("/api/v1/bulk-email/send-reminders", {"emails": [f"ann.{tag}@example.com"]}, status=202)

    # A finished import with a bad row (its error report has a row), which also records a
    # webhook delivery for the endpoint above.
    path = tmp_path / f"{tag}.csv"
    path.write_text(f"email,name\ndee.{tag}@example.com,Dee\nnot-an-address,Bad\n")
    job = import_create(actor=Actor(user=owner, source="command"), owner=owner, list_name=f"{tag} news",
                        stored=store_local_file(path))
    pipeline.import_run(job_id=job.pk, token=pipeline.import_claim(job_id=job.pk))
    deliveries = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()["results"]

    return {
        "subscriber_id": [subscriber["id"]],
        "list_name": [f"{tag} news"],
        "suppressions": [suppression["id"]],
        "templates": [template["id"]],
        "campaign_id": [campaign["id"]],
        "imports": [str(job.pk)],
        "bulk_jobs": [bulk_job["job_id"]],
        "batch_id": [batch["batch_id"]],
        "endpoint_id": [endpoint["id"]],
        "delivery_id": [d["id"] for d in deliveries],
        "url": [endpoint["url"]],
        "task_id": [str(job.pk), campaign["id"], batch["batch_id"], bulk_job["job_id"]],
    }


@pytest.fixture
def api_server(request, transactional_db, operators_group, tmp_path, settings) -> ApiServer:
    settings.IMPORT_DIR = tmp_path / "imports"
    owner = UserFactory(username="contract-owner")
    outsider = UserFactory(username="contract-outsider")
    for user in (owner, outsider):
        user.groups.add(operators_group)
    ids: dict[str, list] = {}
    for user in (owner, outsider):
        for name, values in _seed(user, tmp_path).items():
            ids.setdefault(name, []).extend(values)
    _, token = api_token_create(actor=Actor.system("command"), username=owner.username)

    with running_api_server(tmp_path, IMPORT_DIR=str(settings.IMPORT_DIR), SMS_INBOUND_SECRET=SMS_SECRET) as base:
        api = ApiServer(base, token, ids)
        yield api
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nAPI contract: {len(api.operations)} of {len(api.declared)} operations called, {api.cases} requests")
    assert api.operations == api.declared, sorted(api.declared - api.operations)


CONFIG = {
    # Text PostgreSQL can store: no NUL characters and valid UTF-8 (no lone surrogates). Every API
    # route refuses the others with a 400 naming the value (inboxerr/parsers.py), which a JSON
    # Schema cannot say of each string.
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "allow-x00": False, "codec": "utf-8"},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
               "stateful": {"enabled": False}},
}


@pytest.fixture
def api_schema(api_server: ApiServer):
    config = SchemathesisConfig.from_dict(CONFIG)
    config.projects.get_default().update(base_url=api_server.base)
    loaded = schemathesis.openapi.from_url(f"{api_server.base}/api/schema/?format=json", config=config)
    api_server.declared = {f"{op.ok().method.upper()} {op.ok().path}" for op in loaded.get_all_operations()}
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")

# Refusals of requests the schema allows, for rules it does not state: about stored data (the
# template or list named must exist and be yours, an address deliverable on the channel, which
# phonenumbers decides) or merge fields that must parse. Operation -> the fields such a refusal may
# name; only a 400 naming nothing else is let through, and only by the check that schema-valid
# requests are accepted.
_TEMPLATE_BODY = {"subject", "body_text", "body_html"}  # merge fields that parse (no HTML for SMS)
_REMINDER = {"emails", "subscriber_ids", "list_names", "template_id"}
UNSTATABLE: dict[str, set[str]] = {
    # Each item: a deliverable address for its channel, a template of yours that is active and of
    # the channel, or content (and a subject for email), the template's merge fields given, and a
    # request_id unique within the batch.
    "POST /api/v1/batch/process": {"recipient", "template_id", "content", "subject", "variables", "request_id"},
    # Addresses deliverable; lists, ids and the template yours.
    "POST /api/v1/bulk-email/send-reminders": _REMINDER,
    "POST /api/v1/bulk-email/send-instructor-reminders": _REMINDER,
    # A template of yours, active and of the channel; merge fields that parse; an audience of your
    # lists or import; a subject for email only; a time in the future.
    "POST /api/v1/campaigns": {"template_id", "message_content", "subject", "list_names", "import_id", "scheduled_at"},
    "POST /api/v1/campaigns/from-csv": {"file", "template_id", "message_content", "subject", "scheduled_at"},
    # An address deliverable on the campaign's channel.
    "POST /api/v1/campaigns/{campaign_id}/test-send": {"recipient"},
    # A CSV text file with the list's key column; a mapping and keep_raw (JSON in a form field)
    # naming its columns.
    "POST /api/v1/imports/csv": {"file", "mapping", "keep_raw", "key_field"},
    # The address the list is keyed on (email or phone), deliverable.
    "POST /api/v1/subscribers/": {"email", "phone"},
    "PUT /api/v1/subscribers/{subscriber_id}": {"email", "phone", "list"},
    # An address deliverable on the channel.
    "POST /api/v1/suppressions/": {"address"},
    # end_date not before start_date.
    "GET /api/v1/subscribers/audit/logs": {"end_date"},
    "POST /api/v1/templates/": _TEMPLATE_BODY,
    # An update merges with the stored template, whose body the schema cannot see.
    "PUT /api/v1/templates/{id}/": _TEMPLATE_BODY,
    "PATCH /api/v1/templates/{id}/": _TEMPLATE_BODY,
}

# Rules across fields that the schema states (anyOf/oneOf on the request body, see
# inboxerr.openapi.states_rule): their refusals name a field listed above for other reasons, and
# are never let through, by what they say.
STATED: dict[str, tuple[str, ...]] = {
    "POST /api/v1/templates/": ("a template needs a text or an HTML body",),
    "POST /api/v1/campaigns": ("Give either template_id or message_content, not both", "A campaign needs message content"),
    "POST /api/v1/bulk-email/send-reminders": ("give at least one of",),
    "POST /api/v1/bulk-email/send-instructor-reminders": ("give at least one of",),
}

# Which list of real ids a path parameter takes, by its name and, where names repeat, the route.
_ROUTE_IDS = {
    ("/api/v1/suppressions/", "id"): "suppressions",
    ("/api/v1/templates/", "id"): "templates",
    ("/api/v1/imports/", "job_id"): "imports",
    ("/api/v1/subscribers/jobs/", "job_id"): "imports",
    ("/api/v1/bulk-email/", "job_id"): "bulk_jobs",
}


def _real_ids(server: ApiServer, path: str, name: str) -> list:
    for (prefix, param), key in _ROUTE_IDS.items():
        if path.startswith(prefix) and name == param:
            return server.ids[key]
    return server.ids.get(name, [])


@hypothesis_settings(deadline=None, suppress_health_check=list(HealthCheck))
@schema.parametrize()
def test_every_operation_keeps_to_the_schema(case, api_server: ApiServer):
    meta = case.meta
    if case.path_parameters and meta is not None and meta.generation.mode.is_positive:
        # Ids that name real objects, the caller's or another owner's (which must answer 404),
        # chosen by the generated value so that Hypothesis replays the same choice. Negative
        # cases keep the value they were generated with.
        for name, value in case.path_parameters.items():
            real = _real_ids(api_server, case.path, name)
            if real:
                case.path_parameters[name] = real[zlib.crc32(repr(value).encode()) % len(real)]
    label = f"{case.operation.method.upper()} {case.operation.path}"
    api_server.operations.add(label)
    api_server.cases += 1
    headers = {"Authorization": f"Token {api_server.token}"}
    response = case.call(headers=headers)
    excluded = [positive_data_acceptance] if _unstatable_refusal(label, response) else []
    takes = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    if response.status_code == 400 and not response.content and "multipart/form-data" in takes:
        # Daphne's HTTP layer (Twisted) parses a multipart body itself before the application
        # runs, and answers a malformed one with an empty 400 of its own: not Inboxerr's answer.
        excluded += [content_type_conformance, response_schema_conformance]
    case.validate_response(response, headers=headers, excluded_checks=excluded)


def _unstatable_refusal(label: str, response) -> bool:
    """A 400 for a rule in UNSTATABLE: the fields the refusal names are all listed for this
    operation."""
    if response.status_code != 400 or label not in UNSTATABLE:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    items = body.get("errors")
    # The batch API names "items" and lists each bad item's field; the fields are what count.
    if isinstance(items, list):
        named = {item.get("field") for item in items if isinstance(item, dict)}
    else:
        named = {body.get("field")}
    named.discard(None)
    if any(rule in str(body.get("detail", "")) for rule in STATED.get(label, ())):
        return False
    return bool(named) and named <= UNSTATABLE[label]
