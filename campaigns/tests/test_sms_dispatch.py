"""SMS campaigns through the dispatcher, in-process, to the real loopback gateway injecting 500s,
429 with Retry-After, timeouts, dropped connections and permanent refusals: every message ends
sent or failed with its reason, within the attempt policy, and none is delivered twice."""

import json

import pytest

from campaigns import dispatch, services
from campaigns.models import CampaignStatus, Message, MessageStatus
from campaigns.segments import sms_segments
from campaigns.tests.gateway import twilio_api
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)

FLAKY = "+14155551001"  # two 500s, then accepted
THROTTLED = "+14155551002"  # 429 with Retry-After: 1
STALLED = "+14155551003"  # no answer within the timeout, though the gateway took it
DROPPED = "+14155551004"  # taken, then the connection closed without an answer
REFUSED = "+14155551005"  # 400: permanent
DOWN = "+14155551006"  # 503 every time
LONG = "+14155551007"  # a GSM-7 text of two segments
UNICODE = "+14155551008"  # a UCS-2 text of two segments
CONTENT = "Hi {{ name }}, your order is ready."


@pytest.fixture
def twilio_gateway(settings):
    with twilio_api(settings) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.DISPATCH_MAX_ATTEMPTS = 3
    settings.DISPATCH_BACKOFF_BASE_SECONDS = 0.05
    settings.DISPATCH_BACKOFF_MAX_SECONDS = 0.2


def _campaign(owner, phones: dict[str, str]):
    phone_list = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    for phone, name in phones.items():
        SubscriberFactory(list=phone_list, email="", phone=phone, name=name)
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="SMS", channel="sms",
                                        message_content=CONTENT, list_names=["Phones"])
    services.campaign_start(actor=actor, campaign=campaign)
    services.campaign_fan_out(campaign_id=campaign.pk)
    return campaign


def _messages(campaign) -> dict[str, Message]:
    return {message.recipient: message for message in Message.objects.filter(campaign=campaign)}


def test_every_message_ends_sent_or_failed_with_its_reason_within_the_policy(owner, sms_gateway):
    regular = {f"+1415555{2000 + n}": f"Person {n}" for n in range(30)}
    special = {FLAKY: "Flo", THROTTLED: "Theo", STALLED: "Stan", DROPPED: "Dot", REFUSED: "Ray", DOWN: "Dan",
               LONG: "L" * 140, UNICODE: "Zoë " * 20}
    campaign = _campaign(owner, {**regular, **special})
    sms_gateway.fail(500, times=2, to=FLAKY)
    sms_gateway.fail(429, retry_after="1", to=THROTTLED)
    sms_gateway.stall(seconds=1.0, to=STALLED)
    sms_gateway.drop(to=DROPPED)
    sms_gateway.fail(400, message="Unknown destination handset", to=REFUSED)
    sms_gateway.fail(503, times=10, to=DOWN)

    sent = dispatch.dispatch(run_seconds=30)

    messages = _messages(campaign)
    assert sent == 36
    assert {m.status for m in messages.values()} == {MessageStatus.SENT, MessageStatus.FAILED}
    assert all(1 <= m.attempts <= 3 for m in messages.values())
    outcome = {phone: (m.status, m.attempts) for phone, m in messages.items() if phone in special}
    assert outcome == {
        FLAKY: ("sent", 3), THROTTLED: ("sent", 2), STALLED: ("sent", 2), DROPPED: ("sent", 2),
        REFUSED: ("failed", 1), DOWN: ("failed", 3), LONG: ("sent", 1), UNICODE: ("sent", 1),
    }
    assert {m.attempts for phone, m in messages.items() if phone in regular} == {1}
    assert messages[REFUSED].last_error == "HTTP 400: Unknown destination handset"
    assert messages[DOWN].last_error == "HTTP 503: Service Unavailable"
    # A message sent at the first try has no error; one that needed retries keeps the last reason.
    assert all(m.last_error == "" for m in messages.values() if m.status == MessageStatus.SENT and m.attempts == 1)
    assert all(m.last_error for m in messages.values() if m.status == MessageStatus.SENT and m.attempts > 1)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.failed_count, campaign.unknown_count) == (
        CampaignStatus.COMPLETED, 36, 2, 0)

    # On the wire: the attempt limit held, and the policy's delays were kept.
    assert sms_gateway.attempts(str(messages[DOWN].uid)) == 3
    assert sms_gateway.attempts(str(messages[REFUSED].uid)) == 1
    throttled = [r.at for r in sms_gateway.requests() if r.to == THROTTLED]
    assert len(throttled) == 2 and throttled[1] - throttled[0] >= 0.95  # Retry-After: 1 honoured


def test_each_sent_message_is_delivered_once_with_its_uuid_as_idempotency_key(owner, sms_gateway):
    phones = {f"+1415555{3000 + n}": f"P{n}" for n in range(10)}
    campaign = _campaign(owner, {**phones, STALLED: "Stan", DROPPED: "Dot"})
    sms_gateway.stall(seconds=1.0, to=STALLED)
    sms_gateway.drop(to=DROPPED)

    dispatch.dispatch(run_seconds=30)

    messages = _messages(campaign)
    delivered = sms_gateway.delivered()
    assert sorted(item.request.to for item in delivered) == sorted(messages)  # once each
    for item in delivered:
        message = messages[item.request.to]
        assert item.request.headers["Idempotency-Key"] == str(message.uid)
        assert json.loads(item.request.body)["id"] == str(message.uid)
        assert message.status == MessageStatus.SENT
        assert message.provider_message_id == item.provider_id
    # The two ambiguous sends reached the gateway twice; the key kept them to one delivery.
    assert sms_gateway.attempts(str(messages[STALLED].uid)) == 2
    assert sms_gateway.attempts(str(messages[DROPPED].uid)) == 2
    assert len(sms_gateway.delivered_to(STALLED)) == len(sms_gateway.delivered_to(DROPPED)) == 1


def test_the_segment_count_of_each_sent_message_is_stored(owner, sms_gateway):
    campaign = _campaign(owner, {"+14155554001": "Ann", LONG: "L" * 140, UNICODE: "Zoë " * 20,
                                 "+14155554002": "€" * 70})
    dispatch.dispatch(run_seconds=10)

    messages = _messages(campaign)
    assert {phone: m.segments for phone, m in messages.items()} == {
        "+14155554001": 1, LONG: 2, UNICODE: 2, "+14155554002": 2,
    }
    for item in sms_gateway.delivered():
        assert messages[item.request.to].segments == sms_segments(item.request.text).segments


def test_a_gateway_that_is_down_fails_every_message_after_the_last_attempt(owner, sms_gateway, settings):
    campaign = _campaign(owner, {"+14155555001": "A", "+14155555002": "B"})
    sms_gateway.stop()  # nothing listens any more: every connect is refused

    dispatch.dispatch(run_seconds=10)

    messages = _messages(campaign).values()
    assert {(m.status, m.attempts) for m in messages} == {(MessageStatus.FAILED, 3)}
    assert all(m.last_error.startswith("cannot connect to 127.0.0.1") for m in messages)


def test_a_twilio_timeout_is_recorded_unknown_and_never_resent(owner, twilio_gateway):
    campaign = _campaign(owner, {STALLED: "Stan", THROTTLED: "Theo", "+14155556001": "Ann"})
    twilio_gateway.stall(seconds=1.0, to=STALLED)
    twilio_gateway.fail(429, retry_after="0", to=THROTTLED)

    dispatch.dispatch(run_seconds=15)

    messages = _messages(campaign)
    assert (messages[STALLED].status, messages[STALLED].attempts) == (MessageStatus.UNKNOWN, 1)
    assert "outcome unknown" in messages[STALLED].last_error
    assert len([r for r in twilio_gateway.requests() if r.to == STALLED]) == 1
    assert (messages[THROTTLED].status, messages[THROTTLED].attempts) == (MessageStatus.SENT, 2)
    assert messages["+14155556001"].provider_message_id.startswith("SM")
    assert messages["+14155556001"].segments == 1
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.unknown_count) == (CampaignStatus.COMPLETED, 2, 1)
