"""The dispatcher in real worker processes against a real SMTP server on loopback."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import dispatch, services
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from inboxerr.actors import Actor
from inboxerr.tests.processes import kill_group, start_qcluster, wait_for
from subscribers.models import Subscriber, SubscriberList

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def start_cluster(smtp_server):
    procs = []

    def start(workers: int = 2, **env: str):
        proc = start_qcluster(Q_WORKERS=str(workers), DISPATCH_WORKERS=str(workers),
                              EMAIL_URL=f"smtp://127.0.0.1:{smtp_server.port}", **env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        kill_group(proc)


def _campaign_for(owner, count: int) -> Campaign:
    lst = SubscriberList.objects.create(owner=owner, name="Big")
    Subscriber.objects.bulk_create(
        [Subscriber(list=lst, key=f"p{i}@x.io", email=f"p{i}@x.io", name=f"P{i}", custom_fields={"n": str(i)})
         for i in range(count)], batch_size=5000,
    )
    SubscriberList.objects.filter(pk=lst.pk).update(subscriber_count=count)
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="Big", channel="email", subject="#{{ n }}",
                                        message_content="Hello {{ name }}", list_names=["Big"])
    return services.campaign_start(actor=actor, campaign=campaign)


def test_ten_thousand_messages_two_workers_each_delivered_exactly_once(owner, smtp_server, start_cluster):
    campaign = _campaign_for(owner, 10_000)
    start_cluster(workers=2)
    wait_for(lambda: Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.COMPLETED).exists(),
              timeout=240, what="the campaign to complete")
    campaign.refresh_from_db()
    assert (campaign.total_count, campaign.sent_count, campaign.failed_count) == (10_000, 10_000, 0)
    received = Counter(rcpt[0] for rcpt, _ in smtp_server.messages)
    assert len(received) == 10_000 and set(received.values()) == {1}
    # Each message carried its own merge fields.
    sample = next(msg for rcpt, msg in smtp_server.messages if rcpt[0] == "p4242@x.io")
    assert sample["Subject"] == "#4242" and "Hello P4242" in sample.get_body(("plain",)).get_content()


def test_worker_killed_mid_dispatch_loses_nothing_and_sends_nothing_twice(owner, smtp_server, start_cluster, settings):
    campaign = _campaign_for(owner, 3_000)
    cluster = start_cluster(workers=1)
    # Kill right after seeing a claimed batch in progress (between two batches none is leased).
    wait_for(lambda: Message.objects.filter(campaign=campaign, status=MessageStatus.SENT).count() >= 300
             and Message.objects.filter(campaign=campaign, status=MessageStatus.SENDING).exists(),
             what="some messages sent and a batch in progress")
    kill_group(cluster)
    before = Counter(Message.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert before[MessageStatus.SENDING] > 0  # the killed worker held a leased batch

    # The lease expires; the sweeper puts untouched messages back and the one that may have
    # been in flight aside (SMTP has no idempotency: it is never resent blindly).
    Message.objects.filter(campaign=campaign, status=MessageStatus.SENDING).update(leased_until=timezone.now() - timedelta(seconds=1))
    swept = dispatch.requeue_expired_leases()
    assert swept.get(MessageStatus.UNKNOWN, 0) <= 1
    services.kick_dispatchers(1)
    start_cluster(workers=1)
    wait_for(lambda: Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.COMPLETED).exists(),
              timeout=180, what="the campaign to complete")
    campaign.refresh_from_db()
    assert campaign.sent_count + campaign.unknown_count == 3_000
    assert campaign.unknown_count <= 1 and campaign.failed_count == 0
    received = Counter(rcpt[0] for rcpt, _ in smtp_server.messages)
    assert max(received.values()) == 1  # none twice
    sent = set(Message.objects.filter(campaign=campaign, status=MessageStatus.SENT).values_list("recipient", flat=True))
    assert sent <= set(received)  # every message recorded as sent was received
    assert len(received) >= 2_999
