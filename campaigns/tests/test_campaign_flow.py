"""Create -> start (fan-out) -> dispatch, with a real SMTP server on loopback."""

import pytest

from audit.models import AuditLog
from campaigns import dispatch, services
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from inboxerr.actors import Actor
from subscribers.models import Suppression
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def audience(owner):
    news = SubscriberListFactory(owner=owner, name="News")
    vip = SubscriberListFactory(owner=owner, name="VIP")
    SubscriberFactory(list=news, email="ann@x.io", name="Ann", custom_fields={"order_no": "A1"})
    SubscriberFactory(list=news, email="bob@x.io", name="Bob", custom_fields={"order_no": "B2"})
    SubscriberFactory(list=vip, email="ann@x.io", name="Ann again", custom_fields={"order_no": "A9"})
    SubscriberFactory(list=news, email="gone@x.io", status="unsubscribed")
    SubscriberFactory(list=news, email="blocked@x.io")
    Suppression.objects.create(owner=owner, channel="email", address="blocked@x.io", reason="manual")
    return news, vip


def _actor(user):
    return Actor(user=user, source="api")


def test_campaign_is_sent_to_each_address_once_rendered_for_each_recipient(owner, audience, smtp_server):
    campaign = services.campaign_create(
        actor=_actor(owner), owner=owner, name="Hello", channel="email", subject="Hi {{ name }}",
        message_content="Your order {{ order_no }}.", list_names=["News", "VIP"],
    )
    services.campaign_start(actor=_actor(owner), campaign=campaign)
    services.campaign_fan_out(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.total_count, campaign.skipped_count) == (CampaignStatus.RUNNING, 4, 2)
    skipped = dict(Message.objects.filter(status="skipped").values_list("recipient", "skip_reason"))
    assert skipped == {"gone@x.io": "unsubscribed", "blocked@x.io": "suppressed"}

    assert dispatch.dispatch(run_seconds=10) == 2
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.failed_count) == (CampaignStatus.COMPLETED, 2, 0)
    received = {rcpt[0]: msg for rcpt, msg in smtp_server.messages}
    assert set(received) == {"ann@x.io", "bob@x.io"}
    assert received["ann@x.io"]["Subject"] == "Hi Ann"
    assert "Your order A1." in received["ann@x.io"].get_body(("plain",)).get_content()
    assert received["bob@x.io"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(received["bob@x.io"]["List-Unsubscribe"]).strip().startswith("<http://127.0.0.1:8000/u/")
    message = Message.objects.get(recipient="bob@x.io")
    assert received["bob@x.io"]["Message-ID"] == f"<{message.uid}@inboxerr.local>"
    assert message.status == MessageStatus.SENT and message.attempts == 1
    assert AuditLog.objects.filter(entity_type="campaign", user_action__contains="completed").exists()


def test_campaign_needs_exactly_one_of_template_and_content(owner, audience):
    with pytest.raises(Exception, match="needs message content"):
        services.campaign_create(actor=_actor(owner), owner=owner, name="x", channel="sms", list_names=["News"])
    template = services.template_create(actor=_actor(owner), owner=owner, name="t", channel="sms", body_text="Hi")
    with pytest.raises(Exception, match="not both"):
        services.campaign_create(actor=_actor(owner), owner=owner, name="x", channel="sms", template_id=template.pk,
                                 message_content="Hi", list_names=["News"])
    assert not Campaign.objects.exists()


def test_missing_merge_fields_are_named_before_anything_is_queued(owner, audience):
    with pytest.raises(Exception) as raised:
        services.campaign_create(actor=_actor(owner), owner=owner, name="x", channel="email", subject="s",
                                 message_content="{{ coupon }} {{ city|default:'-' }} {{ order_no }}", list_names=["News"])
    assert raised.value.extra["missing_fields"] == ["coupon"]
    assert not Campaign.objects.exists()


def test_sms_campaign_goes_through_the_sms_backend(owner, sms_outbox):
    lst = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    SubscriberFactory(list=lst, email="", phone="+14155552671", name="Cy")
    campaign = services.campaign_create(actor=_actor(owner), owner=owner, name="sms", channel="sms",
                                        message_content="Hi {{ name }}", list_names=["Phones"])
    services.campaign_start(actor=_actor(owner), campaign=campaign)
    services.campaign_fan_out(campaign_id=campaign.pk)
    dispatch.dispatch(run_seconds=5)
    assert [(m.recipient, m.body_text) for m in sms_outbox] == [("+14155552671", "Hi Cy")]
