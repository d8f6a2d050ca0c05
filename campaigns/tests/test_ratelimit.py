"""The database token bucket: the waits it asks for (recorded by a fake sleep, never measured on
the wall clock), burst, edits that apply at once, no limit when off, and rate 0 pausing a channel."""

import pytest
from django.utils import timezone

from campaigns import dispatch, ratelimit, services
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus, RateLimit
from campaigns.tests.buckets import rate_limit_row
from campaigns.ratelimit import ChannelPaused, acquire
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

# Waits are computed from the database clock, which moves a little between two calls.
SLACK = 0.05


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(autouse=True)
def database_bucket(settings):
    settings.REDIS_URL = ""  # these tests are about the bucket kept in the database


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


def _bucket(*, rate: float, burst: int, full: bool = True, **fields) -> RateLimit:
    return rate_limit_row(name="email", rate=rate, burst=burst, tokens=burst if full else 0, **fields)


@pytest.mark.django_db
def test_a_full_bucket_lets_a_burst_through_without_waiting(sleep):
    _bucket(rate=10, burst=5)
    waits = [acquire("email", sleep=sleep) for _ in range(5)]
    assert waits == [0.0] * 5 and sleep.waits == []


@pytest.mark.django_db
def test_past_the_burst_each_send_waits_one_more_interval(sleep):
    _bucket(rate=10, burst=5)
    for _ in range(5):
        acquire("email", sleep=sleep)
    waits = [acquire("email", sleep=sleep) for _ in range(3)]
    assert sleep.waits == waits
    for expected, wait in zip([0.1, 0.2, 0.3], waits):
        assert expected - SLACK <= wait <= expected


@pytest.mark.django_db
def test_taking_several_tokens_at_once_waits_for_all_of_them(sleep):
    _bucket(rate=4, burst=2)
    assert acquire("email", count=2, sleep=sleep) == 0.0
    wait = acquire("email", count=3, sleep=sleep)
    assert 0.75 - SLACK <= wait <= 0.75 and sleep.waits == [wait]


@pytest.mark.django_db
def test_an_idle_bucket_refills_only_up_to_its_burst(sleep):
    bucket = _bucket(rate=1, burst=3, full=False)
    RateLimit.objects.filter(pk=bucket.pk).update(refilled_at=timezone.now() - timezone.timedelta(hours=1))
    assert [acquire("email", sleep=sleep) for _ in range(3)] == [0.0, 0.0, 0.0]  # not 3,600 tokens
    wait = acquire("email", sleep=sleep)
    assert 1.0 - SLACK <= wait <= 1.0
    bucket.refresh_from_db()
    assert -1.0 <= bucket.tokens < 0


@pytest.mark.django_db
def test_an_empty_bucket_makes_the_first_send_wait(sleep):
    _bucket(rate=2, burst=10, full=False)
    wait = acquire("email", sleep=sleep)
    assert 0.5 - SLACK <= wait <= 0.5


@pytest.mark.django_db
def test_a_rate_edited_in_the_admin_applies_to_the_next_token(sleep):
    bucket = _bucket(rate=10, burst=1)
    acquire("email", sleep=sleep)
    first = acquire("email", sleep=sleep)
    assert 0.1 - SLACK <= first <= 0.1
    RateLimit.objects.filter(pk=bucket.pk).update(rate=1)  # no restart, no cache to clear
    second = acquire("email", sleep=sleep)
    assert 2.0 - SLACK * 10 <= second <= 2.0


@pytest.mark.django_db
def test_buckets_are_per_channel(sleep):
    _bucket(rate=1, burst=1)
    rate_limit_row(name="sms", rate=1, burst=1, tokens=1)
    assert acquire("email", sleep=sleep) == 0.0
    assert acquire("sms", sleep=sleep) == 0.0
    assert acquire("email", sleep=sleep) > 0.9
    assert len(sleep.waits) == 1


@pytest.mark.django_db
def test_no_row_means_no_limit(sleep):
    assert [acquire("email", sleep=sleep) for _ in range(50)] == [0.0] * 50
    assert sleep.waits == []


@pytest.mark.django_db
def test_a_disabled_row_means_no_limit(sleep):
    _bucket(rate=1, burst=1, full=False, enabled=False)
    assert [acquire("email", sleep=sleep) for _ in range(10)] == [0.0] * 10
    assert sleep.waits == []
    # A disabled bucket at rate 0 does not pause the channel either.
    RateLimit.objects.filter(name="email").update(rate=0)
    assert acquire("email", sleep=sleep) == 0.0


@pytest.mark.django_db
def test_rate_zero_pauses_the_channel(sleep):
    _bucket(rate=0, burst=5)
    with pytest.raises(ChannelPaused, match="sending on email is paused"):
        acquire("email", sleep=sleep)
    assert sleep.waits == []
    assert acquire("sms", sleep=sleep) == 0.0  # other channels are not affected


@pytest.mark.django_db(transaction=True)
def test_a_paused_channel_sends_nothing_and_uses_up_no_attempts(owner, smtp_server, settings):
    settings.DISPATCH_MAX_ATTEMPTS = 3
    lst = SubscriberListFactory(owner=owner, name="L")
    SubscriberFactory(list=lst, email="ann@x.io", name="Ann")
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="C", channel="email", subject="Hi",
                                        message_content="Hello", list_names=["L"])
    services.campaign_start(actor=actor, campaign=campaign)
    services.campaign_fan_out(campaign_id=campaign.pk)
    bucket = _bucket(rate=0, burst=10)

    for _ in range(4):  # four dispatcher runs while the channel is paused
        dispatch.dispatch(run_seconds=1)
        Message.objects.filter(campaign=campaign).update(next_attempt_at=None)  # as if the wait had passed

    message = Message.objects.get(campaign=campaign)
    assert smtp_server.messages == []
    assert message.status == MessageStatus.QUEUED and "paused" in message.last_error
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING
    assert message.attempts == 0, "a message never handed to the mail server has used no attempt"

    RateLimit.objects.filter(pk=bucket.pk).update(rate=100, tokens=10)
    ratelimit.clear_config_cache()  # as a worker does after CONFIG_SECONDS
    dispatch.dispatch(run_seconds=5)
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.SENT, 1)
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["ann@x.io"]]
