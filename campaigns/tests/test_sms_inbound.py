"""POST /api/v1/sms/inbound: signed replies from handsets turn STOP into suppressions and START
into their removal, for every owner who has the number; a signed request is acted on once and only
while its timestamp is fresh."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditLog
from campaigns import tasks
from campaigns.api.sms_inbound import request_signature, signed_headers
from campaigns.models import SmsInboundReceipt
from inboxerr.tests.factories import UserFactory
from subscribers.models import Subscriber, SubscriberStatus, Suppression
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory, SuppressionFactory

URL = "/api/v1/sms/inbound"
SECRET = "inbound-secret"
PHONE = "+14155552671"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inbound_secret(settings):
    settings.SMS_INBOUND_SECRET = SECRET
    settings.PHONE_DEFAULT_REGION = "US"


@pytest.fixture
def holders(owner, outsider):
    """The owner has the number on a phone list, the outsider on an email list; a third user
    has other numbers only."""
    phones = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    mailing = SubscriberListFactory(owner=outsider, name="Mailing")
    stranger_list = SubscriberListFactory(owner=UserFactory(username="stranger"), name="Other", key_field="phone")
    return {
        "owner": SubscriberFactory(list=phones, email="", phone=PHONE, name="Ann"),
        "outsider": SubscriberFactory(list=mailing, email="ann@x.io", phone=PHONE, name="Ann"),
        "other": SubscriberFactory(list=phones, email="", phone="+14155552672", name="Bob"),
        "stranger": SubscriberFactory(list=stranger_list, email="", phone="+14155552673"),
    }


def _now() -> int:
    return int(timezone.now().timestamp())


def _post(client, payload: dict | None = None, *, raw: bytes | None = None, form: bool = False,
          signature: str | None = "sign", timestamp: int | str | None = "now", **extra):
    """POST as the gateway does: the body signed with a timestamp (now unless given). `signature`
    None or `timestamp` None leaves that header out; any other string is sent as it is."""
    if raw is None:
        raw = urlencode(payload).encode() if form else json.dumps(payload).encode()
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    if timestamp == "now":
        timestamp = _now()
    if signature == "sign":
        signature = request_signature(SECRET, timestamp, raw)
    if signature is not None:
        extra["HTTP_X_INBOXERR_SIGNATURE"] = signature
    if timestamp is not None:
        extra["HTTP_X_INBOXERR_TIMESTAMP"] = str(timestamp)
    return client.post(URL, data=raw, content_type=content_type, **extra)


def _statuses(holders: dict) -> dict:
    return {name: Subscriber.objects.get(pk=sub.pk).status for name, sub in holders.items()}


def _sms_suppressions() -> set:
    return set(Suppression.objects.filter(channel="sms").values_list("owner__username", "address", "reason"))


# --- STOP ------------------------------------------------------------------------------------------


def test_stop_suppresses_the_number_for_every_owner_who_has_it(anon_api, holders):
    response = _post(anon_api, {"from": "(415) 555-2671", "body": "STOP"})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "action": "stop", "phone": PHONE, "owners": 2,
        "suppressions_created": 2, "suppressions_removed": 0, "subscribers_changed": 2,
    }
    assert _sms_suppressions() == {("owner", PHONE, "unsubscribed"), ("outsider", PHONE, "unsubscribed")}
    assert _statuses(holders) == {"owner": "unsubscribed", "outsider": "unsubscribed", "other": "active",
                                  "stranger": "active"}
    # An SMS STOP says nothing about email: the outsider's email address is not suppressed.
    assert not Suppression.objects.filter(channel="email").exists()


def test_stop_is_audited_per_owner_through_the_services(anon_api, holders, owner, outsider):
    _post(anon_api, {"from": PHONE, "body": "stop"}, REMOTE_ADDR="10.1.2.3")

    rows = AuditLog.objects.order_by("id")
    assert sorted((row.owner_id, row.action, row.entity_type) for row in rows) == sorted([
        (owner.pk, "create", "suppression"), (owner.pk, "update", "subscriber"),
        (outsider.pk, "create", "suppression"), (outsider.pk, "update", "subscriber"),
    ])
    update = rows.get(owner=owner, entity_type="subscriber")
    assert update.actor_id is None
    assert update.entity_id == str(holders["owner"].pk)
    assert (update.before, update.after) == ({"status": ["active"]}, {"status": "unsubscribed"})
    assert update.metadata["source"] == "sms_inbound" and update.metadata["ip"] == "10.1.2.3"
    assert update.user_action == f"SMS STOP from {PHONE}: 1 subscriber(s) set to unsubscribed"


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel", "END", "quit!"])
def test_every_opt_out_keyword_stops(anon_api, holders, word):
    assert _post(anon_api, {"from": PHONE, "body": word}).json()["action"] == "stop"
    assert _statuses(holders)["owner"] == "unsubscribed"


@pytest.mark.parametrize("text", ["stop texting me", "HELP", "", "Yes", "STOP STOP", "S T O P"])
def test_anything_else_changes_nothing(anon_api, holders, text):
    response = _post(anon_api, {"from": PHONE, "body": text})
    assert response.status_code == 200
    assert response.json()["action"] == "none"
    assert not Suppression.objects.exists() and not AuditLog.objects.exists()
    assert set(_statuses(holders).values()) == {"active"}


def test_a_second_stop_writes_nothing_new(anon_api, holders):
    _post(anon_api, {"from": PHONE, "body": "STOP"})
    audit_rows = AuditLog.objects.count()
    second = _post(anon_api, {"from": PHONE, "body": "QUIT"}).json()
    assert (second["suppressions_created"], second["subscribers_changed"]) == (0, 0)
    assert AuditLog.objects.count() == audit_rows
    assert Suppression.objects.filter(channel="sms").count() == 2


def test_stop_keeps_an_existing_suppression_and_its_reason(anon_api, holders, owner):
    SuppressionFactory(owner=owner, channel="sms", address=PHONE, reason="manual")
    _post(anon_api, {"from": PHONE, "body": "STOP"})
    assert ("owner", PHONE, "manual") in _sms_suppressions()
    assert _statuses(holders)["owner"] == "unsubscribed"


def test_stop_from_a_number_nobody_has_is_accepted_and_changes_nothing(anon_api, holders):
    response = _post(anon_api, {"from": "+14155559999", "body": "STOP"})
    assert response.status_code == 200
    assert response.json()["owners"] == 0
    assert not Suppression.objects.exists()


def test_twilio_style_form_fields_are_accepted(anon_api, holders):
    response = _post(anon_api, {"From": PHONE, "Body": "Stop", "To": "+14155550100", "MessageSid": "SM1"}, form=True)
    assert response.status_code == 200, response.content
    assert response.json()["action"] == "stop"
    assert _statuses(holders)["owner"] == "unsubscribed"


# --- START -----------------------------------------------------------------------------------------


def test_start_lifts_what_stop_did(anon_api, holders):
    _post(anon_api, {"from": PHONE, "body": "STOP"})
    response = _post(anon_api, {"from": PHONE, "body": "START"})

    assert response.json() == {
        "action": "start", "phone": PHONE, "owners": 2,
        "suppressions_created": 0, "suppressions_removed": 2, "subscribers_changed": 2,
    }
    assert _sms_suppressions() == set()
    assert set(_statuses(holders).values()) == {"active"}
    deletes = AuditLog.objects.filter(action="delete", entity_type="suppression")
    assert deletes.count() == 2
    assert {row.before["reason"] for row in deletes} == {"unsubscribed"}


def test_unstop_also_starts(anon_api, holders):
    _post(anon_api, {"from": PHONE, "body": "STOP"})
    assert _post(anon_api, {"from": PHONE, "body": "unstop"}).json()["suppressions_removed"] == 2


def test_start_keeps_a_manual_block_and_an_email_unsubscribe(anon_api, holders, owner, outsider):
    _post(anon_api, {"from": PHONE, "body": "STOP"})
    Suppression.objects.filter(owner=owner, channel="sms").update(reason="manual")  # an operator's block
    SuppressionFactory(owner=outsider, channel="email", address="ann@x.io", reason="unsubscribed")

    result = _post(anon_api, {"from": PHONE, "body": "START"}).json()

    assert result["suppressions_removed"] == 1
    assert _sms_suppressions() == {("owner", PHONE, "manual")}
    # The owner's subscriber is active again (the block alone keeps SMS away); the outsider's
    # stays unsubscribed: they also unsubscribed from email, which a text cannot undo.
    assert _statuses(holders)["owner"] == "active"
    assert _statuses(holders)["outsider"] == "unsubscribed"


def test_start_leaves_bounced_subscribers_alone(anon_api, holders):
    Subscriber.objects.filter(pk=holders["owner"].pk).update(status=SubscriberStatus.BOUNCED)
    assert _post(anon_api, {"from": PHONE, "body": "START"}).json()["subscribers_changed"] == 0
    assert _statuses(holders)["owner"] == "bounced"


# --- The signature is the authentication -----------------------------------------------------------


def test_an_unsigned_request_is_refused_with_401(anon_api, holders):
    response = _post(anon_api, {"from": PHONE, "body": "STOP"}, signature=None)
    assert response.status_code == 401
    assert "X-Inboxerr-Signature" in response.json()["detail"]
    assert "X-Inboxerr-Signature" in response["WWW-Authenticate"]
    assert not Suppression.objects.exists()


def test_a_request_without_a_timestamp_is_refused_with_401(anon_api, holders):
    # What a sender that signs the body alone (the old scheme) sends.
    raw = json.dumps({"from": PHONE, "body": "STOP"}).encode()
    response = _post(anon_api, raw=raw, timestamp=None, signature=request_signature(SECRET, "", raw))
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing X-Inboxerr-Timestamp header (unix seconds, signed with the body)"}
    assert "X-Inboxerr-Timestamp" in response["WWW-Authenticate"]
    assert not Suppression.objects.exists() and not SmsInboundReceipt.objects.exists()


@pytest.mark.parametrize("timestamp", ["soon", "1.7e9", "-5", " 1767225600", "1767225600.5", "9" * 13])
def test_a_timestamp_that_is_not_unix_seconds_is_refused_with_401(anon_api, holders, timestamp):
    response = _post(anon_api, {"from": PHONE, "body": "STOP"}, timestamp=timestamp)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("X-Inboxerr-Timestamp must be unix seconds (digits only), got ")
    assert not Suppression.objects.exists() and not SmsInboundReceipt.objects.exists()


@pytest.mark.parametrize(
    "signature",
    ["sha256=" + "0" * 64, "nonsense", request_signature("another-secret", 1767225600, b'{"from": "+14155552671", "body": "STOP"}'),
     request_signature(SECRET, 1767225600, b'{"from": "+14155552671", "body": "START"}'),
     "sha256=" + hmac.new(SECRET.encode(), b'{"from": "+14155552671", "body": "STOP"}', hashlib.sha256).hexdigest()],
    ids=["zeros", "nonsense", "other-secret", "other-body", "body-only"],
)
def test_a_wrong_signature_is_refused_with_403(anon_api, holders, signature):
    response = _post(anon_api, raw=b'{"from": "+14155552671", "body": "STOP"}', signature=signature, timestamp=1767225600)
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid X-Inboxerr-Signature signature"}
    assert not Suppression.objects.exists() and set(_statuses(holders).values()) == {"active"}


def test_a_body_changed_after_signing_is_refused(anon_api, holders):
    now = _now()
    signed = request_signature(SECRET, now, b'{"from": "+14155552671", "body": "START"}')
    response = _post(anon_api, raw=b'{"from": "+14155552671", "body": "STOP" }', signature=signed, timestamp=now)
    assert response.status_code == 403


def test_a_timestamp_changed_after_signing_is_refused(anon_api, holders):
    # Moving a captured request's timestamp forward to pass the age check breaks its signature.
    raw = json.dumps({"from": PHONE, "body": "STOP"}).encode()
    signed = request_signature(SECRET, _now() - 3600, raw)
    response = _post(anon_api, raw=raw, signature=signed, timestamp=_now())
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid X-Inboxerr-Signature signature"}
    assert not Suppression.objects.exists()


def test_the_signature_hex_is_case_insensitive(anon_api, holders):
    raw = json.dumps({"from": PHONE, "body": "STOP"}).encode()
    now = _now()
    signature = request_signature(SECRET, now, raw).upper().replace("SHA256", "sha256")
    response = _post(anon_api, raw=raw, signature=signature, timestamp=now)
    assert response.status_code == 200


def test_signed_headers_are_what_the_route_accepts(anon_api, holders):
    # The helper a sender in Python uses: the current time and the signature over it.
    raw = json.dumps({"from": PHONE, "body": "STOP"}).encode()
    headers = signed_headers(SECRET, raw)
    assert abs(int(headers["X-Inboxerr-Timestamp"]) - _now()) <= 1
    response = anon_api.post(URL, data=raw, content_type="application/json", headers=headers)
    assert response.status_code == 200, response.content
    assert _statuses(holders)["owner"] == "unsubscribed"


# --- Replays ---------------------------------------------------------------------------------------


def _stop_then_start(anon_api) -> tuple[bytes, int]:
    """The owner's subscriber texts STOP, then START; returns the START as captured on the wire."""
    _post(anon_api, {"from": PHONE, "body": "STOP"})
    raw, timestamp = json.dumps({"from": PHONE, "body": "START"}).encode(), _now()
    assert _post(anon_api, raw=raw, timestamp=timestamp).status_code == 200
    _post(anon_api, {"from": PHONE, "body": "STOP", "again": True})  # they change their mind
    return raw, timestamp


def test_a_captured_start_played_again_is_refused_and_the_suppression_stays(anon_api, holders):
    raw, timestamp = _stop_then_start(anon_api)
    suppressions, audit_rows = _sms_suppressions(), AuditLog.objects.count()
    assert suppressions == {("owner", PHONE, "unsubscribed"), ("outsider", PHONE, "unsubscribed")}

    replay = _post(anon_api, raw=raw, timestamp=timestamp)

    assert replay.status_code == 403
    assert replay.json() == {"detail": "Request already processed: this X-Inboxerr-Signature was accepted before"}
    assert _sms_suppressions() == suppressions
    assert _statuses(holders)["owner"] == "unsubscribed"
    assert AuditLog.objects.count() == audit_rows


def test_a_replay_with_the_signature_upper_cased_is_still_a_replay(anon_api, holders):
    raw, timestamp = _stop_then_start(anon_api)
    signature = request_signature(SECRET, timestamp, raw).upper().replace("SHA256", "sha256")
    replay = _post(anon_api, raw=raw, timestamp=timestamp, signature=signature)
    assert replay.status_code == 403
    assert replay.json()["detail"].startswith("Request already processed")
    assert _statuses(holders)["owner"] == "unsubscribed"


def test_a_captured_start_older_than_the_tolerance_is_refused(anon_api, holders, settings):
    settings.SMS_INBOUND_TOLERANCE_SECONDS = 300
    _post(anon_api, {"from": PHONE, "body": "STOP"})
    raw = json.dumps({"from": PHONE, "body": "START"}).encode()

    response = _post(anon_api, raw=raw, timestamp=_now() - 301 - 5)

    assert response.status_code == 403
    detail = response.json()["detail"]
    assert detail.startswith("Timestamp too old: X-Inboxerr-Timestamp is ")
    assert detail.endswith(" s before the server's clock, more than SMS_INBOUND_TOLERANCE_SECONDS (300)")
    assert _statuses(holders)["owner"] == "unsubscribed"
    assert not SmsInboundReceipt.objects.filter(signed_at__lt=timezone.now() - timedelta(seconds=300)).exists()


def test_a_timestamp_too_far_in_the_future_is_refused(anon_api, holders, settings):
    settings.SMS_INBOUND_TOLERANCE_SECONDS = 300
    response = _post(anon_api, {"from": PHONE, "body": "STOP"}, timestamp=_now() + 301 + 5)
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert detail.startswith("Timestamp too far in the future: X-Inboxerr-Timestamp is ")
    assert detail.endswith(" s after the server's clock, more than SMS_INBOUND_TOLERANCE_SECONDS (300)")
    assert not Suppression.objects.exists() and not SmsInboundReceipt.objects.exists()


def test_a_timestamp_within_the_tolerance_either_way_is_accepted(anon_api, holders, settings):
    settings.SMS_INBOUND_TOLERANCE_SECONDS = 300
    assert _post(anon_api, {"from": PHONE, "body": "STOP"}, timestamp=_now() - 240).status_code == 200
    assert _post(anon_api, {"from": PHONE, "body": "START"}, timestamp=_now() + 240).status_code == 200
    assert SmsInboundReceipt.objects.count() == 2


def test_the_same_message_signed_again_is_a_new_request(anon_api, holders):
    # A sender retrying after a lost answer signs again with a new timestamp: accepted, and a
    # second STOP changes nothing more.
    raw = json.dumps({"from": PHONE, "body": "STOP"}).encode()
    first = _post(anon_api, raw=raw, timestamp=_now() - 1)
    second = _post(anon_api, raw=raw, timestamp=_now())
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["suppressions_created"] == 0


def test_a_refused_body_leaves_no_receipt_so_the_request_is_not_spent(anon_api, holders):
    raw, timestamp = b'{"from": "12", "body": "STOP"}', _now()
    assert _post(anon_api, raw=raw, timestamp=timestamp).status_code == 400
    assert not SmsInboundReceipt.objects.exists()
    assert _post(anon_api, raw=raw, timestamp=timestamp).status_code == 400  # the same answer, not a replay


def test_the_minute_tick_forgets_receipts_past_the_tolerance(anon_api, holders, settings):
    settings.SMS_INBOUND_TOLERANCE_SECONDS = 300
    _post(anon_api, {"from": PHONE, "body": "STOP"}, timestamp=_now() - 200)
    _post(anon_api, {"from": PHONE, "body": "START"}, timestamp=_now())
    SmsInboundReceipt.objects.filter(signed_at__lt=timezone.now() - timedelta(seconds=100)).update(
        signed_at=timezone.now() - timedelta(seconds=301))

    assert tasks.tick()["sms_receipts_purged"] == 1
    assert SmsInboundReceipt.objects.count() == 1


def test_a_logged_in_user_still_needs_the_signature(api, holders):
    assert _post(api, {"from": PHONE, "body": "STOP"}, signature=None).status_code == 401
    assert _post(api, {"from": PHONE, "body": "STOP"}).status_code == 200


def test_the_route_is_off_without_a_secret(anon_api, holders, settings):
    settings.SMS_INBOUND_SECRET = ""
    response = _post(anon_api, {"from": PHONE, "body": "STOP"}, signature=request_signature("", _now(), b"x"))
    assert response.status_code == 503
    assert "SMS_INBOUND_SECRET" in response.json()["detail"]
    assert not Suppression.objects.exists()


def test_only_post_is_allowed(anon_api):
    assert anon_api.get(URL).status_code == 405


# --- Bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"from": "12", "body": "STOP"}', "from: '12' is not a valid phone number"),
        (b'{"from": "call me", "body": "STOP"}', "from: 'call me' is not a phone number"),
        (b'{"body": "STOP"}', "from: is required"),
        (b'{"from": "  ", "body": "STOP"}', "from: is required"),
        (b'{"from": 14155552671, "body": "STOP"}', "from: must be text"),
        (b'{"from": "+14155552671", "body": ["STOP"]}', "body: must be text"),
        (b'{"from": "+14155552671", "body": "STOP"', "body: is not valid JSON"),
        (b'["+14155552671", "STOP"]', "body: must be a JSON object"),
        (b"", "body: must be a JSON object"),
    ],
)
def test_bad_bodies_are_refused_with_400_naming_the_problem(anon_api, holders, raw, detail):
    response = _post(anon_api, raw=raw)
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(detail)
    assert not Suppression.objects.exists() and not AuditLog.objects.exists()


def test_the_route_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/sms/inbound"]["post"]
    assert {"X-Inboxerr-Signature", "X-Inboxerr-Timestamp"} <= {p["name"] for p in operation["parameters"]}
    assert "too old" in operation["description"] and "already processed" in operation["description"]


@pytest.mark.django_db(transaction=True)
def test_two_copies_racing_through_two_connections_are_acted_on_once(holders):
    from rest_framework.test import APIClient

    _post(APIClient(), {"from": PHONE, "body": "STOP"})
    raw, timestamp = json.dumps({"from": PHONE, "body": "START"}).encode(), _now()
    barrier, answers = threading.Barrier(2), []

    def send() -> None:
        try:
            barrier.wait()
            response = _post(APIClient(), raw=raw, timestamp=timestamp)
            answers.append((response.status_code, response.json().get("suppressions_removed")))
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers, key=lambda a: a[0]) == [(200, 2), (403, None)]
    assert _sms_suppressions() == set()
    assert AuditLog.objects.filter(action="delete", entity_type="suppression").count() == 2
