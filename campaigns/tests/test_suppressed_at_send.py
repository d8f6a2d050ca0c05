"""An address suppressed after a campaign's fan-out but before its send is not sent to: the
dispatcher's claim skips its message with the fan-out's reason, and nobody else's."""

from collections import Counter

import pytest
from django.test import Client

from campaigns import dispatch, services
from campaigns.models import CampaignStatus, Message, MessageStatus
from campaigns.unsubscribe import unsubscribe_token
from inboxerr.actors import Actor
from subscribers.models import SubscriberStatus, Suppression, SuppressionReason
from subscribers.services import address_unsubscribe, suppression_create
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

EMAILS = ["ann@x.io", "bob@x.io", "cy@x.io", "di@x.io"]
PHONES = ["+14155550101", "+14155550102", "+14155550103", "+14155550104"]


@pytest.fixture
def smtp(smtp_server):
    return smtp_server


def _fanned_out(owner, addresses: list[str], channel: str):
    key = "email" if channel == "email" else "phone"
    lst = SubscriberListFactory(owner=owner, name="L", key_field=key)
    for address in addresses:
        fields = {"email": address} if channel == "email" else {"email": "", "phone": address}
        SubscriberFactory(list=lst, name=f"n{address[-3:]}", **fields)
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="C", channel=channel,
                                        subject="Hi {{ name }}" if channel == "email" else "",
                                        message_content="Hello {{ name }}", list_names=["L"])
    services.campaign_start(actor=actor, campaign=campaign)
    campaign = services.campaign_fan_out(campaign_id=campaign.pk)
    assert (campaign.status, campaign.total_count, campaign.skipped_count) == (CampaignStatus.RUNNING, len(addresses), 0)
    return campaign


def _states(campaign) -> dict:
    return {m.recipient: (m.status, m.skip_reason) for m in Message.objects.filter(campaign=campaign)}


def test_an_email_address_unsubscribed_after_the_fan_out_is_skipped_at_send_time(owner, smtp):
    campaign = _fanned_out(owner, EMAILS, "email")
    # The recipient follows the unsubscribe link of an earlier mail (one-click POST).
    token = unsubscribe_token(owner_id=owner.pk, channel="email", address="bob@x.io")
    assert Client().post(f"/u/{token}", {"List-Unsubscribe": "One-Click"}).status_code == 200

    dispatch.dispatch(run_seconds=10)

    assert sorted(rcpt[0] for rcpt, _ in smtp.messages) == ["ann@x.io", "cy@x.io", "di@x.io"]
    states = _states(campaign)
    assert states["bob@x.io"] == (MessageStatus.SKIPPED, "suppressed")
    assert [states[a] for a in ("ann@x.io", "cy@x.io", "di@x.io")] == [(MessageStatus.SENT, "")] * 3
    bob = Message.objects.get(campaign=campaign, recipient="bob@x.io")
    assert (bob.attempts, bob.lease_token, bob.sent_at) == (0, "", None)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.skipped_count, campaign.failed_count) == (
        CampaignStatus.COMPLETED, 3, 1, 0)


def test_a_phone_that_texts_stop_after_the_fan_out_is_skipped_at_send_time(owner, sms_gateway):
    # The JSON gateway deduplicates on the idempotency key: the claim also marks the rest in flight.
    campaign = _fanned_out(owner, PHONES, "sms")
    address_unsubscribe(actor=Actor.system(), owner_id=owner.pk, channel="sms", address=PHONES[2])

    dispatch.dispatch(run_seconds=10)

    assert sorted(item.request.to for item in sms_gateway.delivered()) == [PHONES[0], PHONES[1], PHONES[3]]
    states = _states(campaign)
    assert states[PHONES[2]] == (MessageStatus.SKIPPED, "suppressed")
    assert sum(1 for status, _ in states.values() if status == MessageStatus.SENT) == 3
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.skipped_count) == (CampaignStatus.COMPLETED, 3, 1)


@pytest.mark.parametrize("reason", [SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED, SuppressionReason.MANUAL])
def test_every_kind_of_suppression_after_the_fan_out_is_skipped_at_send_time(owner, smtp, reason):
    campaign = _fanned_out(owner, EMAILS, "email")
    suppression_create(actor=Actor(user=owner, source="api"), owner=owner, channel="email", address="di@x.io",
                       reason=reason)

    dispatch.dispatch(run_seconds=10)

    assert sorted(rcpt[0] for rcpt, _ in smtp.messages) == ["ann@x.io", "bob@x.io", "cy@x.io"]
    assert _states(campaign)["di@x.io"] == (MessageStatus.SKIPPED, "suppressed")


def test_a_suppression_of_another_channel_or_owner_skips_nothing(owner, smtp, django_user_model):
    campaign = _fanned_out(owner, EMAILS, "email")
    other = django_user_model.objects.create(username="other")
    Suppression.objects.create(owner=other, channel="email", address="ann@x.io")  # another owner's list
    Suppression.objects.create(owner=owner, channel="sms", address="bob@x.io")  # not this channel

    dispatch.dispatch(run_seconds=10)

    assert sorted(rcpt[0] for rcpt, _ in smtp.messages) == sorted(EMAILS)
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.skipped_count) == (4, 0)


def test_the_claim_skips_suppressed_messages_in_its_one_statement_and_returns_the_rest(owner, smtp):
    campaign = _fanned_out(owner, EMAILS, "email")
    address_unsubscribe(actor=Actor.system(), owner_id=owner.pk, channel="email", address="ann@x.io")
    address_unsubscribe(actor=Actor.system(), owner_id=owner.pk, channel="email", address="cy@x.io")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        claimed = dispatch.claim(token="w", limit=10, campaigns=[campaign.pk])

    assert sorted(m.recipient for m in claimed) == ["bob@x.io", "di@x.io"]
    # Each returned message carries its subscriber's fields: send_batch reads nothing more.
    assert all(m.subscriber and m.subscriber["email"] == m.recipient for m in claimed)
    # One claim statement, and one counter update for the skipped: never a query per message.
    assert len(queries) == 2
    assert Counter(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        MessageStatus.SKIPPED: 2, MessageStatus.SENDING: 2}
    campaign.refresh_from_db()
    assert campaign.skipped_count == 2
    assert services_unsubscribed(owner) == {"ann@x.io", "cy@x.io"}


def test_a_claim_whose_every_message_is_suppressed_claims_the_next_ones(owner, smtp):
    campaign = _fanned_out(owner, EMAILS, "email")
    for address in EMAILS[:3]:
        address_unsubscribe(actor=Actor.system(), owner_id=owner.pk, channel="email", address=address)

    claimed = dispatch.claim(token="w", limit=2)  # the first two taken are both skipped

    assert [m.recipient for m in claimed] == ["di@x.io"]
    campaign.refresh_from_db()
    assert campaign.skipped_count == 3


def test_a_run_goes_on_past_a_batch_that_was_all_suppressed(owner, smtp):
    campaign = _fanned_out(owner, EMAILS, "email")
    for address in EMAILS[:2]:
        address_unsubscribe(actor=Actor.system(), owner_id=owner.pk, channel="email", address=address)

    dispatch.dispatch(run_seconds=10, batch_size=2)

    assert sorted(rcpt[0] for rcpt, _ in smtp.messages) == ["cy@x.io", "di@x.io"]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.skipped_count) == (CampaignStatus.COMPLETED, 2, 2)


def services_unsubscribed(owner) -> set:
    from subscribers.models import Subscriber

    return set(Subscriber.objects.filter(list__owner=owner, status=SubscriberStatus.UNSUBSCRIBED)
               .values_list("email", flat=True))
