"""POST /api/v1/sms/inbound: signed replies from handsets turn STOP into suppressions and START
into their removal, for every owner who has the number."""

import json
from urllib.parse import urlencode

import pytest

from audit.models import AuditLog
from campaigns.api.sms_inbound import body_signature
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


def _post(client, payload: dict | None = None, *, raw: bytes | None = None, form: bool = False,
          signature: str | None = "sign", **extra):
    if raw is None:
        raw = urlencode(payload).encode() if form else json.dumps(payload).encode()
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    if signature == "sign":
        signature = body_signature(SECRET, raw)
    if signature is not None:
        extra["HTTP_X_INBOXERR_SIGNATURE"] = signature
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


@pytest.mark.parametrize(
    "signature",
    ["sha256=" + "0" * 64, "nonsense", body_signature("another-secret", b'{"from": "+14155552671", "body": "STOP"}'),
     body_signature(SECRET, b'{"from": "+14155552671", "body": "START"}')],
)
def test_a_wrong_signature_is_refused_with_403(anon_api, holders, signature):
    response = _post(anon_api, raw=b'{"from": "+14155552671", "body": "STOP"}', signature=signature)
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid X-Inboxerr-Signature signature"}
    assert not Suppression.objects.exists() and set(_statuses(holders).values()) == {"active"}


def test_a_body_changed_after_signing_is_refused(anon_api, holders):
    signed = body_signature(SECRET, b'{"from": "+14155552671", "body": "START"}')
    response = _post(anon_api, raw=b'{"from": "+14155552671", "body": "STOP" }', signature=signed)
    assert response.status_code == 403


def test_the_signature_hex_is_case_insensitive(anon_api, holders):
    raw = json.dumps({"from": PHONE, "body": "STOP"}).encode()
    response = _post(anon_api, raw=raw, signature=body_signature(SECRET, raw).upper().replace("SHA256", "sha256"))
    assert response.status_code == 200


def test_a_logged_in_user_still_needs_the_signature(api, holders):
    assert _post(api, {"from": PHONE, "body": "STOP"}, signature=None).status_code == 401
    assert _post(api, {"from": PHONE, "body": "STOP"}).status_code == 200


def test_the_route_is_off_without_a_secret(anon_api, holders, settings):
    settings.SMS_INBOUND_SECRET = ""
    response = _post(anon_api, {"from": PHONE, "body": "STOP"}, signature=body_signature("", b"x"))
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
    assert "X-Inboxerr-Signature" in {p["name"] for p in operation["parameters"]}
