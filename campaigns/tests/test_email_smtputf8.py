"""Internationalized addresses through the email channel, against a real SMTP server (aiosmtpd)
with and without the SMTPUTF8 extension: an IDN domain goes out as punycode either way; a UTF-8
local part is sent with SMTPUTF8 when the server offers it, and fails alone, with the reason,
when it does not."""

import pytest

from campaigns import dispatch, services
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from campaigns.tests.conftest import Inbox
from campaigns.tests.smtp import serve_smtp
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESSES = ["ann@example.com", "renée.lee6@outlook.com", "user@bücher.example"]


class Envelopes(Inbox):
    """Keeps the MAIL options too: whether the client asked for SMTPUTF8."""

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.options = getattr(self, "options", {})
            for rcpt in envelope.rcpt_tos:
                self.options[rcpt] = list(envelope.mail_options)
        return await super().handle_DATA(server, session, envelope)


def _send_campaign(owner) -> Campaign:
    lst = SubscriberListFactory(owner=owner, name="Intl", key_field="email")
    for address in ADDRESSES:
        SubscriberFactory(list=lst, email=address, name=address.split("@")[0])
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="C", channel="email", subject="Hi {{ name }}",
                                        message_content="Hello {{ name }}", list_names=["Intl"])
    services.campaign_start(actor=actor, campaign=campaign)
    services.campaign_fan_out(campaign_id=campaign.pk)
    dispatch.dispatch(run_seconds=10)
    campaign.refresh_from_db()
    return campaign


def test_a_server_with_smtputf8_receives_every_internationalized_address(owner, settings):
    inbox = Envelopes()
    with serve_smtp(inbox, settings, enable_SMTPUTF8=True):
        campaign = _send_campaign(owner)

    assert (campaign.status, campaign.sent_count, campaign.failed_count) == (CampaignStatus.COMPLETED, 3, 0)
    received = {tuple(rcpts): message for rcpts, message in inbox.messages}
    assert set(received) == {("ann@example.com",), ("renée.lee6@outlook.com",), ("user@xn--bcher-kva.example",)}
    # The UTF-8 local part travels as UTF-8, in the envelope and in the To header alike.
    assert received[("renée.lee6@outlook.com",)]["To"] == "renée.lee6@outlook.com"
    assert received[("renée.lee6@outlook.com",)]["Subject"] == "Hi renée.lee6"
    assert "SMTPUTF8" in inbox.options["renée.lee6@outlook.com"]
    assert "SMTPUTF8" not in inbox.options["ann@example.com"]  # only the message that needs it


def test_without_smtputf8_only_the_utf8_local_part_fails_with_the_reason(owner, settings):
    inbox = Envelopes()
    with serve_smtp(inbox, settings, enable_SMTPUTF8=False):
        campaign = _send_campaign(owner)

    assert (campaign.status, campaign.sent_count, campaign.failed_count) == (CampaignStatus.COMPLETED, 2, 1)
    failed = Message.objects.get(recipient="renée.lee6@outlook.com")
    assert failed.status == MessageStatus.FAILED and failed.attempts == 1
    assert failed.last_error == "the server does not offer SMTPUTF8, needed for renée.lee6@outlook.com"
    assert sorted(rcpts[0] for rcpts, _ in inbox.messages) == ["ann@example.com", "user@xn--bcher-kva.example"]
