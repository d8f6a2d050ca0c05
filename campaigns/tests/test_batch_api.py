"""Seed 003's batch API over HTTP: POST /api/v1/batch/process (the seed's response shape, item
order, sequences, vendors, templates and content, normalised and suppressed recipients), every
way a body can be wrong (400/413, nothing stored), who may call each route, the outbox switch,
and the monitoring routes (pending batches, batch status, items, retry). The publisher's sending
is tested elsewhere."""

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Count, Max, Min
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditLog
from campaigns import services
from campaigns.models import BatchStatus, BatchStream, Message, MessageBatch, MessageStatus, MessageTemplate, OutboxSwitch
from inboxerr.actors import Actor
from inboxerr.tests.factories import UserFactory
from subscribers.models import Suppression

pytestmark = pytest.mark.django_db

PROCESS_URL = "/api/v1/batch/process"
STATUS_URL = "/api/v1/outbox/status"
START_URL = "/api/v1/outbox/start"
STOP_URL = "/api/v1/outbox/stop"
PENDING_URL = "/api/v1/outbox/pending-batches"
DATA_FIELDS = {"batch_id", "timestamp", "total_json_objects", "vendor_counts", "unique_vendors", "processing_time_ms"}


def batch_url(batch_id: str, action: str) -> str:
    return f"/api/v1/outbox/batch/{batch_id}/{action}"


def email_item(n, **fields) -> dict:
    return {"request_id": str(n), "vendor_name": "EVICORE", "channel": "email", "recipient": f"user{n}@example.com",
            "subject": "Your code", "content": "Code {{ code }}", "variables": {"code": str(n)}, **fields}


def sms_item(n, **fields) -> dict:
    return {"request_id": str(n), "vendor_name": "Cohere", "channel": "sms", "recipient": f"+1415555{n:04d}",
            "content": "Code {{ code }}", "variables": {"code": str(n)}, **fields}


def post(client, body):
    return client.post(PROCESS_URL, body, format="json")


def post_raw(client, raw: bytes | str, content_type: str = "application/json", **extra):
    return client.generic("POST", PROCESS_URL, raw, content_type=content_type, **extra)


def ingest(client, items) -> str:
    response = post(client, items)
    assert response.status_code == 200, response.content
    return response.json()["data"]["batch_id"]


def items_of(client, batch_id: str, **params) -> list[dict]:
    response = client.get(batch_url(batch_id, "items"), {"limit": 200, **params})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def template(owner, **fields) -> MessageTemplate:
    data = {"name": "Order", "channel": "email", "subject": "Hi {{ name }}", "body_text": "Order {{ order_no }}",
            "body_html": "<p>Order {{ order_no }}</p>", **fields}
    return services.template_create(actor=Actor(user=owner, source="api"), owner=owner, **data)


def stored_state() -> tuple:
    """Everything an ingest writes: a refused request leaves all of it as it was."""
    return (
        MessageBatch.objects.count(), Message.objects.count(),
        sorted(BatchStream.objects.values_list("owner_id", "last_sequence")),
        AuditLog.objects.filter(entity_type="message_batch").count(),
    )


def failed_batch(client, owner) -> MessageBatch:
    """A batch the publisher finished with failures: items 1-2 sent, 3 failed, 4 unknown."""
    batch_id = ingest(client, [email_item(n) for n in range(1, 5)])
    batch = MessageBatch.objects.get(batch_id=batch_id)
    now = timezone.now()
    items = {m.sequence: m for m in Message.objects.filter(batch=batch)}
    for seq in (1, 2):
        Message.objects.filter(pk=items[seq].pk).update(status=MessageStatus.SENT, attempts=1, sent_at=now,
                                                        provider_message_id=f"pub-{seq}")
    Message.objects.filter(pk=items[3].pk).update(status=MessageStatus.FAILED, attempts=3, last_error="550 rejected",
                                                  next_attempt_at=now + timedelta(minutes=5))
    Message.objects.filter(pk=items[4].pk).update(status=MessageStatus.UNKNOWN, attempts=1, lease_token="abc",
                                                  leased_until=now, send_started_at=now)
    MessageBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.FAILED, status_reason="2 items failed", sent_count=2, failed_count=2, started_at=now,
        finished_at=now,
    )
    batch.refresh_from_db()
    return batch


@pytest.fixture
def earlier_batch(api, owner):
    """A batch the owner stored before, so the owner's stream exists (last_sequence 1)."""
    batch_id = ingest(api, [email_item(1)])
    assert BatchStream.objects.get(owner=owner).last_sequence == 1
    return batch_id


# --- Ingest: the seed's response and what is stored ------------------------------------------------


@pytest.mark.parametrize("wrap", [False, True], ids=["array", "object-with-items"])
def test_a_batch_is_stored_in_request_order_and_answered_in_the_seeds_shape(api, owner, wrap):
    items = [email_item(1), sms_item(2), email_item(3, vendor_name="Acme"), sms_item(4, vendor_name=None),
             email_item(5)]
    del items[4]["vendor_name"]
    before = datetime.now(UTC).replace(tzinfo=None)
    response = post(api, {"items": items} if wrap else items)
    after = datetime.now(UTC).replace(tzinfo=None)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"status", "message", "data"}
    assert (body["status"], body["message"]) == ("success", "Batch processed successfully with metadata")
    data = body["data"]
    assert set(data) == DATA_FIELDS
    assert re.fullmatch(r"[0-9a-f]{16}", data["batch_id"])
    stamp = datetime.fromisoformat(data["timestamp"])
    assert stamp.tzinfo is None and before - timedelta(seconds=1) <= stamp <= after + timedelta(seconds=1)
    assert data["total_json_objects"] == 5
    assert data["vendor_counts"] == {"EVICORE": 1, "Cohere": 1, "Acme": 1, "unspecified": 2}
    assert data["unique_vendors"] == 4
    assert isinstance(data["processing_time_ms"], float) and data["processing_time_ms"] >= 0

    batch = MessageBatch.objects.get(batch_id=data["batch_id"])
    assert (batch.owner, batch.sequence, batch.status, batch.total_items) == (owner, 1, BatchStatus.PENDING, 5)
    assert batch.vendor_counts == data["vendor_counts"] and batch.processing_time_ms == data["processing_time_ms"]
    listed = items_of(api, data["batch_id"])
    assert [i["item_sequence"] for i in listed] == [1, 2, 3, 4, 5]
    assert [i["request_id"] for i in listed] == ["1", "2", "3", "4", "5"]
    assert [i["vendor_name"] for i in listed] == ["EVICORE", "Cohere", "Acme", None, None]
    assert [i["channel"] for i in listed] == ["email", "sms", "email", "sms", "email"]
    assert all(i["status"] == "pending" and i["sent"] is False and i["publish_id"] is None for i in listed)
    assert all(i["batch_id"] == data["batch_id"] and i["attempts"] == 0 and i["sent_at"] is None for i in listed)
    assert len({i["item_id"] for i in listed}) == 5 and all(uuid.UUID(i["item_id"]) for i in listed)
    assert listed[0]["request_data"] == {"content": "Code {{ code }}", "subject": "Your code", "variables": {"code": "1"}}
    assert listed[1]["request_data"] == {"content": "Code {{ code }}", "variables": {"code": "2"}}
    stored = Message.objects.filter(batch=batch)
    assert set(stored.values_list("status", flat=True)) == {MessageStatus.QUEUED}
    assert not stored.filter(campaign__isnull=False).exists()
    row = AuditLog.objects.get(entity_type="message_batch", action="create", entity_id=data["batch_id"])
    assert (row.actor_id, row.owner_id) == (owner.pk, owner.pk)
    assert row.after == {"batch_sequence": 1, "total_items": 5, "vendor_counts": data["vendor_counts"]}


def test_batch_sequence_counts_up_per_owner_and_owners_are_independent(api, outsider_api, owner, outsider):
    first = ingest(api, [email_item(1)])
    theirs = ingest(outsider_api, [email_item(1)])
    second = ingest(api, [email_item(1)])  # request ids only need to be unique within one batch
    third = ingest(api, [sms_item(1)])
    sequences = dict(MessageBatch.objects.values_list("batch_id", "sequence"))
    assert [sequences[b] for b in (first, second, third)] == [1, 2, 3]
    assert sequences[theirs] == 1
    assert BatchStream.objects.get(owner=owner).last_sequence == 3
    assert BatchStream.objects.get(owner=outsider).last_sequence == 1
    assert api.get(batch_url(third, "status")).json()["batch_sequence"] == 3
    assert outsider_api.get(batch_url(theirs, "status")).json()["batch_sequence"] == 1
    assert len({first, second, third, theirs}) == 4


def test_vendor_counts_group_by_vendor_and_items_without_one_are_unspecified(api):
    items = [email_item(n, vendor_name=v) for n, v in enumerate(["A", "B", "A", None, "  ", "A", " B "], start=1)]
    del items[3]["vendor_name"]
    data = post(api, items).json()["data"]
    assert data["vendor_counts"] == {"A": 3, "B": 2, "unspecified": 2}
    assert data["unique_vendors"] == 3 and data["total_json_objects"] == 7
    assert [i["vendor_name"] for i in items_of(api, data["batch_id"])] == ["A", "B", "A", None, None, "A", "B"]


def test_template_items_are_stored_with_their_template_and_variables(api, owner):
    email_tpl = template(owner)
    sms_tpl = template(owner, name="Code", channel="sms", subject="", body_text="Code {{ code }} for {{ name }}",
                       body_html="")
    batch_id = ingest(api, [
        {"request_id": "a", "channel": "email", "recipient": "ann@example.com", "template_id": email_tpl.pk,
         "variables": {"order_no": "A-17"}},
        {"request_id": "b", "channel": "email", "recipient": "bob@example.com", "template_id": email_tpl.pk,
         "variables": {"order_no": "B-2", "extra": 5}, "subject": "Your order {{ order_no }}"},
        {"request_id": "c", "channel": "sms", "recipient": "+14155552671", "template_id": sms_tpl.pk,
         "variables": {"code": 991}},
    ])
    stored = list(Message.objects.filter(batch__batch_id=batch_id).order_by("sequence"))
    assert [(m.template_id, m.subject, m.content) for m in stored] == [
        (email_tpl.pk, None, None), (email_tpl.pk, "Your order {{ order_no }}", None), (sms_tpl.pk, None, None),
    ]
    assert [m.variables for m in stored] == [{"order_no": "A-17"}, {"order_no": "B-2", "extra": 5}, {"code": 991}]
    listed = items_of(api, batch_id)
    assert listed[0]["request_data"] == {"template_id": email_tpl.pk, "variables": {"order_no": "A-17"}}
    assert listed[2]["request_data"] == {"template_id": sms_tpl.pk, "variables": {"code": 991}}


def test_content_items_keep_their_subject_and_content(api):
    batch_id = ingest(api, [
        email_item(1, subject="  Your   order\n is ready ", content="Hi {{ name|default:'there' }}, order {{ n }}",
                   variables={"n": 7}),
        sms_item(2, content="No merge fields at all", variables=None),
        sms_item(3, content="Plain", vendor_name="X"),
    ])
    stored = list(Message.objects.filter(batch__batch_id=batch_id).order_by("sequence"))
    assert [(m.subject, m.content, m.template_id) for m in stored] == [
        ("Your order is ready", "Hi {{ name|default:'there' }}, order {{ n }}", None),
        (None, "No merge fields at all", None),
        (None, "Plain", None),
    ]
    assert stored[1].variables == {}


def test_request_ids_may_be_integers_and_are_stored_as_text(api):
    batch_id = ingest(api, [email_item(1, request_id=4473), email_item(2, request_id="  4474 ")])
    assert [i["request_id"] for i in items_of(api, batch_id)] == ["4473", "4474"]


def test_recipients_are_normalised(api, settings):
    settings.PHONE_DEFAULT_REGION = "US"
    batch_id = ingest(api, [
        email_item(1, recipient="  Ann.Lee@Example.COM "),
        sms_item(2, recipient="(415) 555-2671"),
        sms_item(3, recipient="+44 7911 123456"),
        sms_item(4, recipient="415.555.0100"),
    ])
    assert [i["recipient"] for i in items_of(api, batch_id)] == [
        "ann.lee@example.com", "+14155552671", "+447911123456", "+14155550100",
    ]


def test_a_suppressed_recipient_is_stored_as_a_skipped_item(api, owner, outsider):
    Suppression.objects.create(owner=owner, channel="email", address="user2@example.com", reason="unsubscribed")
    Suppression.objects.create(owner=owner, channel="sms", address="+14155550003")
    # Another owner's suppression and the same address on the other channel do not count.
    Suppression.objects.create(owner=outsider, channel="email", address="user1@example.com")
    Suppression.objects.create(owner=owner, channel="email", address="+14155550004")
    response = post(api, [email_item(1), email_item(2, recipient="USER2@example.com"), sms_item(3), sms_item(4)])
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["total_json_objects"] == 4
    listed = items_of(api, data["batch_id"])
    assert [(i["status"], i["skip_reason"]) for i in listed] == [
        ("pending", ""), ("skipped", "suppressed"), ("skipped", "suppressed"), ("pending", ""),
    ]
    assert MessageBatch.objects.get(batch_id=data["batch_id"]).skipped_count == 2
    assert "2 suppressed" in AuditLog.objects.get(entity_type="message_batch", entity_id=data["batch_id"]).user_action
    status = api.get(batch_url(data["batch_id"], "status")).json()
    assert status["items"] == {"pending": 2, "sending": 0, "sent": 0, "failed": 0, "skipped": 2}


def test_html_in_content_is_accepted_and_stored_verbatim(api):
    html = '<p onclick="x()">Hi <b>{{ name }}</b> &amp; <script>alert(1)</script></p>'
    batch_id = ingest(api, [email_item(1, content=html, variables={})])
    assert Message.objects.get(batch__batch_id=batch_id).content == html
    assert items_of(api, batch_id)[0]["request_data"]["content"] == html


def test_content_up_to_100k_characters_is_accepted(api):
    content = "x" * 99_990 + "{{ code }}"
    batch_id = ingest(api, [email_item(1, content=content)])
    assert Message.objects.get(batch__batch_id=batch_id).content == content


def test_a_10mb_content_string_is_refused_clearly_and_nothing_is_stored(api, earlier_batch, settings):
    settings.BATCH_MAX_BYTES = 64 * 1024 * 1024  # the body itself is allowed: the item is what is refused
    before = stored_state()
    response = post(api, [email_item(1), sms_item(2, content="y" * 10 * 1024 * 1024)])
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["status"] == "error"
    assert body["errors"] == [{"index": 1, "field": "content", "message": "is longer than 100,000 characters"}]
    assert "items[1].content: is longer than 100,000 characters" in body["detail"]
    assert stored_state() == before


# --- Bad input: 400 (413), the error shape, nothing stored -------------------------------------


def assert_refused(response, before, *, status=400, field=None, detail=None):
    assert response.status_code == status, response.content[:1000]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error"
    if field is not None:
        assert body["field"] == field
    if detail is not None:
        assert detail in body["detail"], body["detail"]
    assert stored_state() == before
    return body


@pytest.mark.parametrize("body, detail", [
    ([], "items: a batch needs at least one item"),
    ({"items": []}, "items: a batch needs at least one item"),
    ("a string", "items: send a JSON array of items, or an object with an 'items' array"),
    (42, "items: send a JSON array"),
    (None, "items: send a JSON array"),
    ({}, "items: send a JSON array"),
    ({"batch": [email_item(1)]}, "batch: unknown field"),
    ({"items": "nope"}, "items: send a JSON array"),
    ({"items": {"0": email_item(1)}}, "items: send a JSON array"),
], ids=["empty-array", "empty-items", "string", "number", "null", "object-without-items", "object-other-key",
        "items-string", "items-object"])
def test_a_body_that_is_not_a_batch_is_refused(api, earlier_batch, body, detail):
    before = stored_state()
    raw = json.dumps(body)
    result = assert_refused(post_raw(api, raw), before, detail=detail)
    assert result["detail"].split(":")[0] == result["field"]


def test_an_object_with_items_and_an_extra_key_is_refused(api, earlier_batch):
    before = stored_state()
    body = assert_refused(post(api, {"items": [email_item(1)], "priority": "high"}), before, field="priority")
    assert body["detail"].startswith("priority: unknown field")


def test_more_items_than_batch_max_items_is_refused(api, earlier_batch, settings):
    settings.BATCH_MAX_ITEMS = 3
    before = stored_state()
    assert_refused(post(api, [email_item(n) for n in range(4)]), before, field="items",
                   detail="items: at most 3 items per batch, got 4")
    assert post(api, [email_item(n) for n in range(3)]).status_code == 200


def test_a_body_over_batch_max_bytes_is_413(api, earlier_batch, settings):
    items = [email_item(n) for n in range(50)]
    size = len(json.dumps(items).encode())
    settings.BATCH_MAX_BYTES = size - 1
    before = stored_state()
    body = assert_refused(post_raw(api, json.dumps(items)), before, status=413, field="body")
    assert body["detail"] == f"body: {size:,} bytes is more than BATCH_MAX_BYTES ({size - 1:,})"
    settings.BATCH_MAX_BYTES = size
    assert post_raw(api, json.dumps(items)).status_code == 200


def test_a_malformed_content_length_is_a_400_not_a_crash(api, earlier_batch):
    before = stored_state()
    response = post_raw(api, json.dumps([email_item(1)]), CONTENT_LENGTH="12abc")
    assert_refused(response, before, field="body", detail="Content-Length")


@pytest.mark.parametrize("raw, detail", [
    (b'[{"request_id": "1", ', "JSON parse error"),
    (b"[{'request_id': '1'}]", "JSON parse error"),
    (b'[{"request_id": "1", "channel": "email", "request_id": "2"}]', "duplicate key 'request_id' in one object"),
    (b'{"items": [], "items": [{"request_id": "1"}]}', "duplicate key 'items' in one object"),
    (b'[{"request_id": "1", "variables": {"x": NaN}}]', "NaN is not a JSON number"),
    (b'[{"request_id": "1", "variables": {"x": Infinity}}]', "Infinity is not a JSON number"),
    (b'[{"request_id": "1", "variables": {"x": -Infinity}}]', "-Infinity is not a JSON number"),
    ('[{"request_id": "caf\u00e9"}]'.encode("latin-1"), "the body is not valid utf-8"),
    (b"\xff\xfe[\x00]\x00", "the body is not valid utf-8"),
    (b"[" * 100_000, "nested too deeply"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b'[{"request_id": ' + b"1" * 5000 + b"}]", "Exceeds the limit (4300 digits)"),
], ids=["truncated", "single-quotes", "duplicate-key", "duplicate-items-key", "nan", "infinity", "minus-infinity",
        "latin-1", "utf-16", "deep-unclosed", "deep-closed", "huge-integer"])
def test_a_body_that_is_not_strict_json_is_refused(api, earlier_batch, raw, detail):
    before = stored_state()
    body = assert_refused(post_raw(api, raw), before, detail=detail)
    assert body["detail"].startswith("JSON parse error")


def test_a_body_that_is_not_json_is_415(api, earlier_batch):
    before = stored_state()
    response = api.post(PROCESS_URL, {"items": "x"})  # multipart form
    assert_refused(response, before, status=415, detail="Unsupported media type")


@pytest.fixture
def templates(owner, outsider):
    return {
        "email": template(owner),
        "sms": template(owner, name="Code", channel="sms", subject="", body_text="Code {{ code }}", body_html=""),
        "inactive": template(owner, name="Old", is_active=False),
        "no_subject": template(owner, name="Bare", subject=""),
        "theirs": template(outsider, name="Secret plan X"),
    }


# (id, item builder, field, message): sent after one good item, the item is refused as items[1]
# with this field, and the message contains this text.
BAD_ITEMS = [
    ("unknown-field", lambda t: email_item(0, priority=1), "priority",
     "unknown field 'priority' (allowed: request_id, vendor_name, channel, recipient, template_id, variables, content, subject)"),
    ("missing-request-id", lambda t: {k: v for k, v in email_item(0).items() if k != "request_id"}, "request_id",
     "is required (a string or an integer)"),
    ("null-request-id", lambda t: email_item(0, request_id=None), "request_id", "is required (a string or an integer)"),
    ("blank-request-id", lambda t: email_item(0, request_id="   "), "request_id", "is required"),
    ("bool-request-id", lambda t: email_item(0, request_id=True), "request_id", "is required (a string or an integer)"),
    ("float-request-id", lambda t: email_item(0, request_id=1.5), "request_id", "is required (a string or an integer)"),
    ("long-request-id", lambda t: email_item(0, request_id="r" * 201), "request_id", "is longer than 200 characters"),
    ("vendor-not-string", lambda t: email_item(0, vendor_name=7), "vendor_name", "must be a string"),
    ("long-vendor", lambda t: email_item(0, vendor_name="v" * 101), "vendor_name", "is longer than 100 characters"),
    ("bad-channel", lambda t: email_item(0, channel="fax"), "channel", "must be one of: email, sms"),
    ("channel-list", lambda t: email_item(0, channel=["email"]), "channel", "must be one of: email, sms"),
    ("channel-object", lambda t: email_item(0, channel={"email": 1}), "channel", "must be one of: email, sms"),
    ("missing-channel", lambda t: {k: v for k, v in email_item(0).items() if k != "channel"}, "channel",
     "must be one of: email, sms"),
    ("invalid-email", lambda t: email_item(0, recipient="ann@@example"), "recipient",
     "'ann@@example' is not a valid email address"),
    ("phone-as-email", lambda t: email_item(0, recipient="+14155552671"), "recipient",
     "'+14155552671' is not a valid email address"),
    ("missing-recipient", lambda t: email_item(0, recipient=""), "recipient", "is required (an email address)"),
    ("invalid-phone", lambda t: sms_item(0, recipient="12"), "recipient", "'12' is not a valid phone number"),
    ("email-as-phone", lambda t: sms_item(0, recipient="ann@example.com"), "recipient",
     "'ann@example.com' is not a phone number"),
    ("both-template-and-content", lambda t: email_item(0, template_id=t["email"].pk, variables={"order_no": 1}),
     "template_id", "give either template_id (with variables) or content, not both"),
    ("neither-template-nor-content", lambda t: email_item(0, content=None), "template_id",
     "give either template_id (with variables) or content, not both"),
    ("blank-content", lambda t: email_item(0, content="  \n"), "template_id",
     "give either template_id (with variables) or content, not both"),
    ("template-id-string", lambda t: email_item(0, content=None, template_id=str(t["email"].pk)), "template_id",
     "must be an integer"),
    ("template-id-list", lambda t: email_item(0, content=None, template_id=[t["email"].pk]), "template_id",
     "must be an integer"),
    ("template-id-object", lambda t: email_item(0, content=None, template_id={"id": 1}), "template_id",
     "must be an integer"),
    ("template-id-float", lambda t: email_item(0, content=None, template_id=1.0), "template_id", "must be an integer"),
    ("template-id-bool", lambda t: email_item(0, content=None, template_id=True), "template_id", "must be an integer"),
    ("unknown-template", lambda t: email_item(0, content=None, template_id=999_999_999), "template_id",
     "template 999999999 not found"),
    ("huge-template-id", lambda t: email_item(0, content=None, template_id=2**70), "template_id",
     f"template {2**70} not found"),
    ("inactive-template", lambda t: email_item(0, content=None, template_id=t["inactive"].pk,
                                               variables={"order_no": 1}),
     "template_id", "is not active"),
    ("template-of-other-channel", lambda t: sms_item(0, content=None, template_id=t["email"].pk,
                                                     variables={"order_no": 1}),
     "template_id", "is for email, the item is sms"),
    ("template-without-subject", lambda t: email_item(0, content=None, subject=None, template_id=t["no_subject"].pk,
                                                      variables={"order_no": 1}),
     "subject", "has no subject: give one"),
    ("missing-template-variables", lambda t: email_item(0, content=None, template_id=t["email"].pk,
                                                        variables={"other": 1}),
     "variables", "missing merge field(s) the template_id uses: order_no"),
    ("missing-content-variables", lambda t: sms_item(0, content="{{ a }} {{ b|default:'-' }} {{ c }}",
                                                     variables={"a": 1}),
     "variables", "missing merge field(s) the content uses: c"),
    ("broken-content", lambda t: sms_item(0, content="Hi\n{% if vip %}no end"), "content", "line 2: Unclosed tag"),
    ("broken-filter", lambda t: sms_item(0, content="{{ code|shout }}"), "content", "Invalid filter: 'shout'"),
    ("broken-subject", lambda t: email_item(0, subject="Hi {% bogus %}"), "subject", "Invalid block tag"),
    ("broken-subject-override", lambda t: email_item(0, content=None, template_id=t["email"].pk,
                                                     variables={"order_no": 1}, subject="{{ a|nope }}"),
     "subject", "Invalid filter: 'nope'"),
    ("email-content-without-subject", lambda t: email_item(0, subject=None), "subject",
     "an email item with content needs a subject"),
    ("email-content-blank-subject", lambda t: email_item(0, subject="   "), "subject",
     "an email item with content needs a subject"),
    ("long-subject", lambda t: email_item(0, subject="s" * 501), "subject", "is longer than 500 characters"),
    ("sms-with-subject", lambda t: sms_item(0, subject="Hello"), "subject", "SMS messages have no subject"),
    ("variables-list", lambda t: email_item(0, variables=["code"]), "variables",
     "must be a JSON object of merge field values"),
    ("variables-string", lambda t: email_item(0, variables="code=1"), "variables",
     "must be a JSON object of merge field values"),
    ("content-not-string", lambda t: sms_item(0, content=["Hi"]), "content", "must be a string"),
    ("subject-not-string", lambda t: email_item(0, subject=5), "subject", "must be a string"),
    ("item-not-object", lambda t: "just text", "", "each item must be a JSON object"),
]


@pytest.mark.parametrize("make, field, message", [case[1:] for case in BAD_ITEMS], ids=[case[0] for case in BAD_ITEMS])
def test_a_bad_item_is_refused_by_index_and_field_and_nothing_is_stored(api, earlier_batch, templates, make, field,
                                                                        message):
    before = stored_state()
    item = make(templates)
    response = post(api, [email_item(100), item])
    body = assert_refused(response, before, field="items")
    assert body["invalid_items"] == 1
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert (error["index"], error["field"]) == (1, field)
    assert message in error["message"], error["message"]
    where = "items[1]" + (f".{field}" if field else "")
    assert body["detail"] == f"1 of 2 items are invalid, nothing was stored; {where}: {error['message']}"


UNSTORABLE = "contains a NUL character or an unpaired surrogate, which cannot be stored"


@pytest.mark.parametrize("field, value", [
    ("content", "a\x00b"), ("request_id", "r\x00"), ("vendor_name", "v\x00"), ("subject", "s\x00"),
    ("variables", {"code": "\x00"}), ("variables", {"code": 1, "k\x00": 1}), ("variables", {"code": [{"x": "\x00"}]}),
    ("content", "a\ud800b"), ("request_id", "\ud83d"), ("vendor_name", "\udfff"), ("subject", "x\ud800"),
    ("variables", {"code": "\udc00"}), ("recipient", "a\ud800@example.com"), ("recipient", "a\x00@example.com"),
])
def test_text_postgresql_cannot_store_is_refused_by_item_not_a_500(api, earlier_batch, field, value):
    """NUL and lone surrogates arrive as valid JSON escapes (\\u0000, \\ud800) but cannot be stored."""
    before = stored_state()
    raw = json.dumps([email_item(0), email_item(1, **{field: value})])  # ensure_ascii: escapes them
    assert "\\u0000" in raw or "\\ud" in raw
    body = assert_refused(post_raw(api, raw), before, field="items")
    assert body["errors"] == [{"index": 1, "field": field, "message": UNSTORABLE}]


def test_emoji_and_other_astral_characters_are_stored(api):
    raw = json.dumps([sms_item(1, content="Party \U0001F389 {{ code }}", vendor_name="\u00e9\U0001F600")],
                     ensure_ascii=True)
    assert "\\ud83c\\udf89" in raw  # a surrogate pair, which decodes to one character
    response = post_raw(api, raw)
    assert response.status_code == 200, response.content
    stored = Message.objects.get(batch__batch_id=response.json()["data"]["batch_id"])
    assert (stored.content, stored.vendor_name) == ("Party \U0001F389 {{ code }}", "\u00e9\U0001F600")


def test_another_owners_template_is_not_found_and_its_existence_does_not_leak(api, earlier_batch, templates):
    before = stored_state()
    theirs = templates["theirs"]
    missing = theirs.pk + 1000
    assert not MessageTemplate.objects.filter(pk=missing).exists()
    responses = [post(api, [email_item(1, content=None, template_id=pk, variables={"order_no": 1})])
                 for pk in (theirs.pk, missing)]
    bodies = [assert_refused(r, before, field="items") for r in responses]
    assert bodies[0]["errors"] == [{"index": 0, "field": "template_id", "message": f"template {theirs.pk} not found"}]
    assert bodies[0]["detail"].replace(str(theirs.pk), "N") == bodies[1]["detail"].replace(str(missing), "N")
    assert "Secret plan" not in responses[0].content.decode()


def test_a_request_id_repeated_in_one_batch_is_refused_naming_both_items(api, earlier_batch):
    before = stored_state()
    body = assert_refused(post(api, [email_item(1, request_id="7"), email_item(2), email_item(3, request_id=7)]),
                          before, field="items")
    assert body["errors"] == [{"index": 2, "field": "request_id", "message": "'7' repeats item 0"}]
    assert "items[2].request_id: '7' repeats item 0" in body["detail"]


def test_a_mix_of_good_and_bad_items_names_exactly_the_bad_indexes(api, earlier_batch):
    before = stored_state()
    items = [email_item(0), email_item(1, recipient="nope"), sms_item(2), sms_item(3, subject="S"), email_item(4)]
    body = assert_refused(post(api, items), before, field="items")
    assert body["invalid_items"] == 2
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "recipient"), (3, "subject")]
    assert body["detail"].startswith("2 of 5 items are invalid, nothing was stored; items[1].recipient: ")


def test_many_bad_items_are_counted_and_the_first_100_listed(api, earlier_batch):
    before = stored_state()
    items = [sms_item(n, recipient="bad") if n % 2 else sms_item(n) for n in range(300)]
    body = assert_refused(post(api, items), before, field="items")
    assert body["invalid_items"] == 150
    assert [e["index"] for e in body["errors"]] == list(range(1, 200, 2))
    assert body["detail"].startswith("150 of 300 items are invalid")


# --- Who may call what -----------------------------------------------------------------------------


def route_calls(batch_id: str) -> list[tuple[str, str]]:
    return [
        ("post", PROCESS_URL), ("get", STATUS_URL), ("post", START_URL), ("post", STOP_URL), ("get", PENDING_URL),
        ("get", batch_url(batch_id, "status")), ("get", batch_url(batch_id, "items")),
        ("post", batch_url(batch_id, "retry")),
    ]


def call(client, method: str, url: str):
    if url == PROCESS_URL:
        return client.post(url, [email_item(9)], format="json")
    return getattr(client, method)(url)


def security_state() -> tuple:
    return (stored_state(), list(OutboxSwitch.objects.values_list("enabled", "changed_by")),
            list(MessageBatch.objects.values_list("batch_id", "status")), AuditLog.objects.count())


def test_anonymous_callers_get_401_on_every_route(anon_api, api, owner):
    batch = failed_batch(api, owner)
    before = security_state()
    for method, url in route_calls(batch.batch_id):
        response = call(anon_api, method, url)
        assert response.status_code == 401, (url, response.content)
        assert response.json()["status"] == "error" and response.json()["detail"]
    assert security_state() == before


def test_a_user_without_permissions_gets_403_on_every_route(no_perms_api, api, owner):
    batch = failed_batch(api, owner)
    before = security_state()
    for method, url in route_calls(batch.batch_id) + route_calls("0" * 16):
        response = call(no_perms_api, method, url)
        assert response.status_code == 403, (url, response.content)
        assert response.json()["status"] == "error"
    assert security_state() == before


def test_an_outsider_gets_404_on_the_owners_batch_routes(outsider_api, api, owner):
    batch = failed_batch(api, owner)
    before = security_state()
    for action, method in (("status", "get"), ("items", "get"), ("retry", "post")):
        response = getattr(outsider_api, method)(batch_url(batch.batch_id, action))
        unknown = getattr(outsider_api, method)(batch_url("f" * 16, action))
        assert response.status_code == unknown.status_code == 404, response.content
        assert response.json() == {"status": "error", "detail": f"Batch '{batch.batch_id}' not found"}
        assert unknown.json()["detail"] == f"Batch '{'f' * 16}' not found"
    assert security_state() == before
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED


def test_an_outsider_sees_none_of_the_owners_batches_in_status_and_pending(outsider_api, outsider, api, owner):
    ingest(api, [email_item(1), email_item(2)])
    ingest(api, [email_item(1)])
    failed_batch(api, owner)
    theirs = ingest(outsider_api, [sms_item(1)])
    status = outsider_api.get(STATUS_URL).json()
    assert status["batches"] == {"pending": 1, "processing": 0, "committed": 0, "failed": 0}
    assert status["items_unsent"] == 1 and status["current_batches"] == []
    pending = outsider_api.get(PENDING_URL).json()
    assert pending["total_pending"] == 1
    assert [(b["batch_id"], b["owner"]) for b in pending["batches"]] == [(theirs, "outsider")]
    mine = api.get(STATUS_URL).json()
    assert mine["batches"] == {"pending": 2, "processing": 0, "committed": 0, "failed": 1}
    assert mine["items_unsent"] == 3


def test_the_superuser_sees_and_acts_on_every_owners_batches(superuser_api, superuser, api, owner, outsider_api,
                                                            outsider):
    mine = ingest(api, [email_item(1)])
    theirs = ingest(outsider_api, [email_item(1), email_item(2)])
    failed = failed_batch(api, owner)
    status = superuser_api.get(STATUS_URL).json()
    assert status["batches"] == {"pending": 2, "processing": 0, "committed": 0, "failed": 1}
    pending = superuser_api.get(PENDING_URL).json()
    assert pending["total_pending"] == 2
    assert owner.pk < outsider.pk  # the superuser's list is in publisher order: owner by owner
    assert [(b["batch_id"], b["owner"]) for b in pending["batches"]] == [(mine, "owner"), (theirs, "outsider")]
    assert superuser_api.get(batch_url(theirs, "status")).json()["total_items"] == 2
    assert len(items_of(superuser_api, theirs)) == 2
    response = superuser_api.post(batch_url(failed.batch_id, "retry"))
    assert response.status_code == 200 and response.json()["requeued_items"] == 2
    row = AuditLog.objects.get(entity_type="message_batch", action="update", entity_id=failed.batch_id)
    assert (row.actor_id, row.owner_id) == (superuser.pk, owner.pk)


def test_routes_answer_405_to_other_methods(api):
    for method, url in (("get", PROCESS_URL), ("post", STATUS_URL), ("get", START_URL), ("post", PENDING_URL),
                        ("delete", batch_url("0" * 16, "status")), ("get", batch_url("0" * 16, "retry"))):
        response = getattr(api, method)(url)
        assert response.status_code == 405, (method, url, response.content)
        assert response.json()["status"] == "error"


# --- The outbox switch --------------------------------------------------------------------------------


def test_an_operator_may_not_start_or_stop_the_outbox(api, settings):
    settings.ENABLE_OUTBOX_PROCESSOR = True
    for url in (STOP_URL, START_URL):
        response = api.post(url)
        assert response.status_code == 403, response.content
        assert response.json()["status"] == "error"
    assert not OutboxSwitch.objects.filter(changed_at__isnull=False).exists()
    assert not AuditLog.objects.filter(entity_type="outbox").exists()
    assert api.get(STATUS_URL).json()["status"] == "running"


def test_the_superuser_stops_and_starts_the_outbox_and_it_persists_with_audit(superuser_api, superuser, api, settings):
    settings.ENABLE_OUTBOX_PROCESSOR = True
    initial = api.get(STATUS_URL).json()
    assert (initial["status"], initial["running"], initial["changed_by"], initial["changed_at"]) == (
        "running", True, "", None)

    response = superuser_api.post(STOP_URL)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"status", "message", "running", "changed_at"}
    assert (body["status"], body["message"], body["running"]) == ("stopped", "Outbox publisher stopped", False)
    switch = OutboxSwitch.objects.get()
    assert (switch.pk, switch.enabled, switch.changed_by) == (1, False, "root")
    assert abs(switch.changed_at - timezone.now()) < timedelta(seconds=10)
    seen = api.get(STATUS_URL).json()  # every operator sees the switch
    assert (seen["status"], seen["running"], seen["changed_by"]) == ("stopped", False, "root")
    row = AuditLog.objects.get(entity_type="outbox", action="update")
    assert (row.actor_id, row.entity_id, row.before, row.after) == (superuser.pk, "publisher", {"enabled": True},
                                                                    {"enabled": False})
    assert row.user_action == "Outbox publisher stopped"

    response = superuser_api.post(START_URL)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["running"]) == ("running", True)
    assert OutboxSwitch.objects.get().enabled is True
    assert api.get(STATUS_URL).json()["status"] == "running"
    rows = AuditLog.objects.filter(entity_type="outbox").order_by("id")
    assert [(r.before, r.after) for r in rows] == [({"enabled": True}, {"enabled": False}),
                                                   ({"enabled": False}, {"enabled": True})]


def test_the_control_outbox_permission_alone_allows_the_switch(operators_group, settings):
    settings.ENABLE_OUTBOX_PROCESSOR = True
    user = UserFactory(username="shift-lead", is_staff=False)
    user.user_permissions.add(Permission.objects.get(codename="control_outbox", content_type__app_label="campaigns"))
    client = APIClient()
    client.force_authenticate(user)
    assert client.post(STOP_URL).status_code == 200
    assert OutboxSwitch.objects.get().changed_by == "shift-lead"
    assert client.get(STATUS_URL).status_code == 403  # it does not grant viewing batches


def test_outbox_status_reports_config_and_open_batches(api, owner, settings):
    settings.OUTBOX_BATCH_SIZE, settings.OUTBOX_POLL_INTERVAL_SECONDS, settings.BATCH_MAX_ITEMS = 25, 2.5, 5000
    first = ingest(api, [email_item(1), email_item(2), email_item(3)])
    ingest(api, [email_item(1)])
    MessageBatch.objects.filter(batch_id=first).update(status=BatchStatus.PROCESSING, sent_count=1)
    body = api.get(STATUS_URL).json()
    assert body["config"] == {"batch_size": 25, "poll_interval_seconds": 2.5, "max_items_per_batch": 5000}
    assert body["batches"] == {"pending": 1, "processing": 1, "committed": 0, "failed": 0}
    assert body["items_unsent"] == 3
    assert [b["batch_id"] for b in body["current_batches"]] == [first]
    assert body["active_publishers"] == 0


# --- Monitoring routes ---------------------------------------------------------------------------------


def test_pending_batches_are_listed_in_processing_order(api):
    ids = [ingest(api, [email_item(1)]) for _ in range(5)]
    MessageBatch.objects.filter(batch_id=ids[2]).update(status=BatchStatus.PROCESSING)
    MessageBatch.objects.filter(batch_id=ids[0]).update(status=BatchStatus.COMMITTED)
    MessageBatch.objects.filter(batch_id=ids[4]).update(status=BatchStatus.FAILED)
    response = api.get(PENDING_URL)
    assert response.status_code == 200
    body = response.json()
    assert body["total_pending"] == 2 + 1
    assert [(b["batch_id"], b["batch_sequence"], b["status"]) for b in body["batches"]] == [
        (ids[2], 3, "processing"), (ids[1], 2, "pending"), (ids[3], 4, "pending"),
    ]
    first = body["batches"][0]
    assert first["links"] == {"status": batch_url(ids[2], "status"), "items": batch_url(ids[2], "items"),
                              "retry": batch_url(ids[2], "retry")}
    assert first["items"] == {"sent": 0, "failed": 0, "skipped": 0, "unsent": 1}
    limited = api.get(PENDING_URL, {"limit": 2}).json()
    assert limited["total_pending"] == 3 and [b["batch_id"] for b in limited["batches"]] == [ids[2], ids[1]]


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "ten", "2.5"])
def test_pending_batches_limit_is_validated(api, limit):
    response = api.get(PENDING_URL, {"limit": limit})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["status"] == "error" and body["detail"].startswith("limit: ") and "limit" in body["errors"]


def test_batch_status_counts_items_by_status(api, owner):
    Suppression.objects.create(owner=owner, channel="email", address="user6@example.com")
    batch_id = ingest(api, [email_item(n) for n in range(1, 9)])
    batch = MessageBatch.objects.get(batch_id=batch_id)
    by_seq = {m.sequence: m.pk for m in Message.objects.filter(batch=batch)}
    for seq, status in ((1, MessageStatus.SENT), (2, MessageStatus.SENT), (3, MessageStatus.FAILED),
                        (4, MessageStatus.UNKNOWN), (5, MessageStatus.SENDING), (7, MessageStatus.CANCELLED)):
        Message.objects.filter(pk=by_seq[seq]).update(status=status)
    MessageBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING)
    response = api.get(batch_url(batch_id, "status"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["items"] == {"pending": 1, "sending": 1, "sent": 2, "failed": 3, "skipped": 1}
    assert body["progress_percentage"] == 75.0
    assert (body["batch_id"], body["batch_sequence"], body["owner"], body["status"], body["total_items"]) == (
        batch_id, 1, "owner", "processing", 8)
    assert body["vendor_counts"] == {"EVICORE": 8}
    assert {"created_at", "started_at", "committed_at", "finished_at", "processing_time_ms", "links"} <= set(body)


@pytest.mark.parametrize("batch_id", ["abc", "0" * 15, "0" * 17, "g" * 16])
def test_an_unknown_batch_id_is_404(api, batch_id):
    ingest(api, [email_item(1)])
    for action, method in (("status", "get"), ("items", "get"), ("retry", "post")):
        response = getattr(api, method)(batch_url(batch_id, action))
        assert response.status_code == 404
        assert response.json() == {"status": "error", "detail": f"Batch '{batch_id}' not found"}


def test_items_are_paginated_in_item_order_and_filtered_by_status(api):
    batch_id = ingest(api, [sms_item(n) for n in range(1, 8)])
    by_seq = {m.sequence: m.pk for m in Message.objects.filter(batch__batch_id=batch_id)}
    Message.objects.filter(pk__in=[by_seq[2], by_seq[5], by_seq[6]]).update(status=MessageStatus.FAILED,
                                                                            last_error="timeout")
    Message.objects.filter(pk=by_seq[3]).update(status=MessageStatus.SENT, provider_message_id="pub-3")
    page = api.get(batch_url(batch_id, "items"), {"page": 2, "limit": 3})
    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 7
    assert [i["item_sequence"] for i in body["results"]] == [4, 5, 6]
    assert "page=3" in body["next"] and "limit=3" in body["next"]
    assert "limit=3" in body["previous"] and "page=" not in body["previous"]  # page 1 is the bare URL
    last = api.get(batch_url(batch_id, "items"), {"page": 3, "limit": 3}).json()
    assert [i["item_sequence"] for i in last["results"]] == [7] and last["next"] is None
    everything = items_of(api, batch_id)
    assert [i["item_sequence"] for i in everything] == list(range(1, 8))
    sent = everything[2]
    assert (sent["status"], sent["sent"], sent["publish_id"]) == ("sent", True, "pub-3")
    failed = api.get(batch_url(batch_id, "items"), {"status": "failed"}).json()
    assert failed["count"] == 3
    assert [(i["item_sequence"], i["status"], i["last_error"]) for i in failed["results"]] == [
        (2, "failed", "timeout"), (5, "failed", "timeout"), (6, "failed", "timeout"),
    ]
    assert [i["item_sequence"] for i in items_of(api, batch_id, status="pending")] == [1, 4, 7]
    assert items_of(api, batch_id, status="skipped") == []


def test_items_reject_a_bad_status_filter_and_a_page_out_of_range(api):
    batch_id = ingest(api, [email_item(1)])
    bad = api.get(batch_url(batch_id, "items"), {"status": "queued"})
    assert bad.status_code == 400
    assert bad.json()["status"] == "error" and bad.json()["detail"].startswith("status: ")
    gone = api.get(batch_url(batch_id, "items"), {"page": 5})
    assert gone.status_code == 404 and gone.json()["status"] == "error"


@pytest.mark.parametrize("status", [BatchStatus.PENDING, BatchStatus.PROCESSING, BatchStatus.COMMITTED])
def test_retrying_a_batch_that_has_not_failed_is_409(api, status):
    batch_id = ingest(api, [email_item(1)])
    MessageBatch.objects.filter(batch_id=batch_id).update(status=status)
    Message.objects.filter(batch__batch_id=batch_id).update(status=MessageStatus.FAILED)
    response = api.post(batch_url(batch_id, "retry"))
    assert response.status_code == 409, response.content
    assert response.json() == {"status": "error",
                               "detail": f"Batch {batch_id} is {status}: only a failed batch can be retried"}
    assert MessageBatch.objects.get(batch_id=batch_id).status == status
    assert Message.objects.get(batch__batch_id=batch_id).status == MessageStatus.FAILED
    assert not AuditLog.objects.filter(entity_type="message_batch", action="update").exists()


def test_retrying_a_failed_batch_requeues_only_its_failed_items(api, owner):
    batch = failed_batch(api, owner)
    response = api.post(batch_url(batch.batch_id, "retry"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["message"], body["requeued_items"]) == ("success", "2 failed items requeued", 2)
    assert (body["batch"]["batch_id"], body["batch"]["status"], body["batch"]["finished_at"]) == (
        batch.batch_id, "pending", None)
    batch.refresh_from_db()
    assert (batch.status, batch.status_reason, batch.failed_count, batch.sent_count, batch.finished_at) == (
        BatchStatus.PENDING, "", 0, 2, None)
    items = {m.sequence: m for m in Message.objects.filter(batch=batch)}
    assert [(items[s].status, items[s].attempts) for s in (1, 2)] == [(MessageStatus.SENT, 1), (MessageStatus.SENT, 1)]
    assert [items[s].provider_message_id for s in (1, 2)] == ["pub-1", "pub-2"]
    for seq in (3, 4):
        item = items[seq]
        assert (item.status, item.attempts, item.next_attempt_at, item.lease_token, item.leased_until,
                item.send_started_at) == (MessageStatus.QUEUED, 0, None, "", None, None)
    listed = items_of(api, batch.batch_id)
    assert [(i["status"], i["sent"], i["attempts"]) for i in listed] == [
        ("sent", True, 1), ("sent", True, 1), ("pending", False, 0), ("pending", False, 0),
    ]
    status = api.get(batch_url(batch.batch_id, "status")).json()
    assert status["status"] == "pending"
    assert status["items"] == {"pending": 2, "sending": 0, "sent": 2, "failed": 0, "skipped": 0}
    assert [b["batch_id"] for b in api.get(PENDING_URL).json()["batches"]] == [batch.batch_id]
    row = AuditLog.objects.get(entity_type="message_batch", action="update", entity_id=batch.batch_id)
    assert (row.actor_id, row.owner_id, row.before, row.after) == (
        owner.pk, owner.pk, {"status": "failed"}, {"status": "pending", "requeued": 2})
    again = api.post(batch_url(batch.batch_id, "retry"))
    assert again.status_code == 409


# --- Scale ------------------------------------------------------------------------------------------------


def test_a_100k_item_batch_is_stored_whole_and_in_order(api, owner, settings):
    settings.BATCH_MAX_ITEMS = 100_000
    vendors = ["EVICORE", "Cohere", "Acme", None]
    items = []
    for n in range(100_000):
        item = {"request_id": f"r{n}", "channel": "email", "recipient": f"person{n}@example.com",
                "subject": "Order {{ order_no }}", "content": "Hi {{ name|default:'there' }}, order {{ order_no }}",
                "variables": {"order_no": n}}
        if vendors[n % 4]:
            item["vendor_name"] = vendors[n % 4]
        items.append(item)
    raw = json.dumps(items)
    started = time.perf_counter()
    response = post_raw(api, raw)
    elapsed = time.perf_counter() - started
    print(f"\n100,000-item batch: {len(raw) / 1e6:.1f} MB ingested through the API in {elapsed:.2f} s "
          f"(processing_time_ms {response.json()['data']['processing_time_ms'] if response.status_code == 200 else '-'})")
    assert response.status_code == 200, response.content[:1000]
    data = response.json()["data"]
    assert data["total_json_objects"] == 100_000
    assert data["vendor_counts"] == {"EVICORE": 25_000, "Cohere": 25_000, "Acme": 25_000, "unspecified": 25_000}
    assert data["unique_vendors"] == 4
    stored = Message.objects.filter(batch__batch_id=data["batch_id"])
    assert stored.aggregate(n=Count("id"), distinct=Count("sequence", distinct=True), low=Min("sequence"),
                            high=Max("sequence")) == {"n": 100_000, "distinct": 100_000, "low": 1, "high": 100_000}
    assert stored.exclude(status=MessageStatus.QUEUED).count() == 0
    samples = dict(stored.filter(sequence__in=[1, 50_000, 100_000]).values_list("sequence", "request_id"))
    assert samples == {1: "r0", 50_000: "r49999", 100_000: "r99999"}
    assert dict(stored.values_list("vendor_name").annotate(n=Count("id")).values_list("vendor_name", "n")) == {
        "EVICORE": 25_000, "Cohere": 25_000, "Acme": 25_000, None: 25_000}
    page = api.get(batch_url(data["batch_id"], "items"), {"page": 500, "limit": 200}).json()
    assert [i["item_sequence"] for i in page["results"]][:: 199] == [99_801, 100_000]
    assert page["count"] == 100_000
