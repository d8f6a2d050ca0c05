"""SMS end to end with real qcluster processes and the loopback HTTP gateway (which deduplicates on
the Idempotency-Key, as a provider that honours it does)."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import dispatch, services
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from campaigns.tests.gateway import Gateway
from inboxerr.actors import Actor
from inboxerr.tests.processes import kill_group, start_qcluster, wait_for
from subscribers.models import Subscriber, SubscriberList

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gateway():
    server = Gateway().start()
    yield server
    server.stop()


@pytest.fixture
def start_cluster(gateway):
    procs = []

    def start(workers: int = 1, **env: str):
        proc = start_qcluster(
            Q_WORKERS=str(workers), DISPATCH_WORKERS=str(workers), SMS_BACKEND="campaigns.channels.sms.HttpGatewayBackend",
            SMS_GATEWAY_URL=gateway.url, DISPATCH_BACKOFF_BASE_SECONDS="0.2", DISPATCH_BACKOFF_MAX_SECONDS="1",
            DISPATCH_SEND_TIMEOUT_SECONDS="1", DISPATCH_LEASE_SECONDS="30", **env,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        kill_group(proc)


def _sms_campaign(owner, count: int) -> Campaign:
    lst = SubscriberList.objects.create(owner=owner, name="Phones", key_field="phone")
    Subscriber.objects.bulk_create(
        [Subscriber(list=lst, key=f"+1415{2000000 + i}", phone=f"+1415{2000000 + i}", name=f"P{i}") for i in range(count)]
    )
    SubscriberList.objects.filter(pk=lst.pk).update(subscriber_count=count)
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="SMS", channel="sms",
                                        message_content="Hi {{ name }}", list_names=["Phones"])
    return services.campaign_start(actor=actor, campaign=campaign)


def test_gateway_failures_end_sent_or_failed_within_the_policy(owner, gateway, start_cluster, settings):
    campaign = _sms_campaign(owner, 30)
    gateway.fail(500, times=3)
    gateway.fail(429, times=2, retry_after="1")
    gateway.stall(seconds=3, times=1)  # longer than the 1 s send timeout: outcome unknown, resent (idempotent)
    gateway.fail(400, times=1, message="Unknown destination handset")
    start_cluster()
    wait_for(lambda: Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.COMPLETED).exists(),
             timeout=120, what="the campaign to complete")
    messages = list(Message.objects.filter(campaign=campaign))
    assert {m.status for m in messages} <= {MessageStatus.SENT, MessageStatus.FAILED}
    failed = [m for m in messages if m.status == MessageStatus.FAILED]
    assert len(failed) == 1 and "Unknown destination handset" in failed[0].last_error
    assert max(m.attempts for m in messages) <= settings.DISPATCH_MAX_ATTEMPTS
    delivered = Counter(item.request.to for item in gateway.delivered())
    assert len(delivered) == 29 and set(delivered.values()) == {1}


def test_worker_killed_mid_dispatch_every_message_sent_none_twice(owner, gateway, start_cluster, settings):
    # The sweeper below runs in this process: it must know the channel's backend as the workers do.
    settings.SMS_BACKEND, settings.SMS_GATEWAY_URL = "campaigns.channels.sms.HttpGatewayBackend", gateway.url
    campaign = _sms_campaign(owner, 10_000)  # large enough that the kill lands mid-dispatch
    worker = start_cluster()
    # Kill right after seeing a claimed batch in progress (between two batches none is leased).
    wait_for(lambda: Message.objects.filter(campaign=campaign, status=MessageStatus.SENT).count() >= 300
             and Message.objects.filter(campaign=campaign, status=MessageStatus.SENDING).exists(),
             what="some messages sent and a batch in progress")
    kill_group(worker)
    assert Message.objects.filter(campaign=campaign, status=MessageStatus.SENDING).exists()

    Message.objects.filter(campaign=campaign, status=MessageStatus.SENDING).update(leased_until=timezone.now() - timedelta(seconds=1))
    swept = dispatch.requeue_expired_leases()
    assert MessageStatus.UNKNOWN not in swept  # the gateway is idempotent: the in-flight one goes back too
    services.kick_dispatchers(1)
    start_cluster()
    wait_for(lambda: Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.COMPLETED).exists(),
             timeout=180, what="the campaign to complete")
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.failed_count, campaign.unknown_count) == (10_000, 0, 0)
    delivered = Counter(item.request.to for item in gateway.delivered())
    assert len(delivered) == 10_000 and set(delivered.values()) == {1}  # every message, none twice
