"""The dispatcher's policy against a real SMTP server on loopback that answers as scripted:
backoff, transient and permanent errors, the attempt limit, outcomes that are unknown, auto-pause,
expired leases, and claims that two workers never share."""

import asyncio
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditLog
from campaigns import dispatch, services
from campaigns.channels.base import ChannelBackend, OutgoingMessage, SendError
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from campaigns.tests.conftest import Inbox
from campaigns.tests.smtp import serve_smtp
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)


class ScriptedInbox(Inbox):
    """A real SMTP server whose answers to RCPT are scripted per address: `script[address]` is a
    list of replies used one per attempt (then 250), `always[address]` a reply for every attempt.
    `data_delay[address]` takes the message but holds the reply to DATA back that many seconds, once."""

    def __init__(self) -> None:
        super().__init__()
        self.script: dict[str, list[str]] = {}
        self.always: dict[str, str] = {}
        self.data_delay: dict[str, float] = {}
        self.rcpt_seen: Counter = Counter()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpt_seen[address] += 1
            reply = self.always.get(address)
            if reply is None and self.script.get(address):
                reply = self.script[address].pop(0)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)  # the message is taken...
        delay = max([self.data_delay.pop(rcpt, 0) for rcpt in envelope.rcpt_tos] or [0])
        if delay:
            await asyncio.sleep(delay)  # ...but the reply comes late
        return reply

    def received(self) -> list[str]:
        return [rcpt[0] for rcpt, _ in self.messages]


@pytest.fixture
def smtp(settings):
    inbox = ScriptedInbox()
    with serve_smtp(inbox, settings):
        yield inbox


@pytest.fixture(autouse=True)
def quick_backoff(settings):
    # Retries come due within a dispatcher run; the policy under test is the same.
    settings.DISPATCH_BACKOFF_BASE_SECONDS = 0.01
    settings.DISPATCH_BACKOFF_MAX_SECONDS = 0.05
    settings.DISPATCH_MAX_ATTEMPTS = 3


def _running(owner, addresses: list[str], *, channel: str = "email", content: str = "Hello {{ name }}") -> Campaign:
    key = "email" if channel == "email" else "phone"
    lst = SubscriberListFactory(owner=owner, name="L", key_field=key)
    for address in addresses:
        fields = {"email": address} if channel == "email" else {"email": "", "phone": address}
        SubscriberFactory(list=lst, name=address.split("@")[0], **fields)
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="C", channel=channel,
                                        subject="Hi {{ name }}" if channel == "email" else "",
                                        message_content=content, list_names=["L"])
    services.campaign_start(actor=actor, campaign=campaign)
    return services.campaign_fan_out(campaign_id=campaign.pk)


def _message(recipient: str) -> Message:
    return Message.objects.get(recipient=recipient)


# --- Backoff -------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings):
    settings.DISPATCH_BACKOFF_BASE_SECONDS, settings.DISPATCH_BACKOFF_MAX_SECONDS = 5.0, 60.0
    for attempt, full in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (6, 60), (20, 60)]:
        samples = [dispatch.backoff_seconds(attempt) for _ in range(300)]
        assert all(full / 2 <= s <= full for s in samples), (attempt, min(samples), max(samples))
        assert len(set(samples)) > 1  # jittered, so workers do not retry in lockstep


def test_backoff_follows_the_settings(settings):
    settings.DISPATCH_BACKOFF_BASE_SECONDS, settings.DISPATCH_BACKOFF_MAX_SECONDS = 1.0, 3.0
    assert all(dispatch.backoff_seconds(10) <= 3.0 for _ in range(100))
    assert all(0.5 <= dispatch.backoff_seconds(1) <= 1.0 for _ in range(100))


def test_backoff_honours_a_longer_retry_after(settings):
    settings.DISPATCH_BACKOFF_BASE_SECONDS, settings.DISPATCH_BACKOFF_MAX_SECONDS = 5.0, 60.0
    assert dispatch.backoff_seconds(1, retry_after=120) == 120
    assert dispatch.backoff_seconds(3, retry_after=0.5) >= 10  # our own backoff when it is longer


class ThrottledBackend(ChannelBackend):
    """An SMS provider that answers 429 with Retry-After: 30."""

    def send(self, message: OutgoingMessage) -> str:
        raise SendError("429 Too Many Requests", retry_after=30)


class LostReplyBackend(ChannelBackend):
    """An SMS provider whose reply never comes back (it may have taken the message)."""

    calls: list[str] = []

    def send(self, message: OutgoingMessage) -> str:
        LostReplyBackend.calls.append(message.recipient)
        raise SendError("timed out waiting for the provider", unknown=True)


def test_a_retry_waits_for_the_providers_retry_after(owner, settings):
    settings.SMS_BACKEND = f"{__name__}.ThrottledBackend"
    campaign = _running(owner, ["+14155552671"], channel="sms")
    before = timezone.now()
    dispatch.dispatch(run_seconds=1)
    message = Message.objects.get(campaign=campaign)
    assert (message.status, message.attempts, message.last_error) == (MessageStatus.QUEUED, 1, "429 Too Many Requests")
    wait = (message.next_attempt_at - before).total_seconds()
    assert 30 <= wait <= 32
    assert dispatch.claim(token="x", limit=10) == []  # not due before then


def test_a_send_whose_outcome_is_unknown_is_recorded_and_not_resent(owner, settings):
    settings.SMS_BACKEND = f"{__name__}.LostReplyBackend"
    LostReplyBackend.calls = []
    campaign = _running(owner, ["+14155552671"], channel="sms")
    dispatch.dispatch(run_seconds=2)
    dispatch.dispatch(run_seconds=1)
    message = Message.objects.get(campaign=campaign)
    assert (message.status, message.attempts) == (MessageStatus.UNKNOWN, 1)
    assert "timed out" in message.last_error
    assert LostReplyBackend.calls == ["+14155552671"]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.unknown_count, campaign.sent_count) == (CampaignStatus.COMPLETED, 1, 0)


# --- Transient and permanent SMTP errors ---------------------------------------------------------


def test_a_transient_451_is_retried_then_sent(owner, smtp):
    smtp.script["ann@x.io"] = ["451 4.7.1 greylisted, try again later"]
    campaign = _running(owner, ["ann@x.io", "bob@x.io"])
    assert dispatch.dispatch(run_seconds=10) == 2
    ann = _message("ann@x.io")
    # Sent on the second try; the first try's reason stays on the record.
    assert (ann.status, ann.attempts) == (MessageStatus.SENT, 2) and "451" in ann.last_error
    assert _message("bob@x.io").attempts == 1
    assert smtp.rcpt_seen["ann@x.io"] == 2 and sorted(smtp.received()) == ["ann@x.io", "bob@x.io"]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.failed_count) == (CampaignStatus.COMPLETED, 2, 0)


def test_a_permanent_550_fails_at_once_with_the_reason_kept(owner, smtp):
    smtp.always["ann@x.io"] = "550 5.1.1 <ann@x.io>: user unknown"
    campaign = _running(owner, ["ann@x.io", "bob@x.io"])
    dispatch.dispatch(run_seconds=10)
    ann = _message("ann@x.io")
    assert (ann.status, ann.attempts) == (MessageStatus.FAILED, 1)
    assert "550" in ann.last_error and "user unknown" in ann.last_error
    assert smtp.rcpt_seen["ann@x.io"] == 1 and smtp.received() == ["bob@x.io"]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.failed_count) == (CampaignStatus.COMPLETED, 1, 1)


@pytest.mark.parametrize("max_attempts", [3, 2])
def test_attempts_never_exceed_the_maximum(owner, smtp, settings, max_attempts):
    settings.DISPATCH_MAX_ATTEMPTS = max_attempts
    smtp.always["ann@x.io"] = "421 4.3.2 service not available, try later"
    campaign = _running(owner, ["ann@x.io"])
    dispatch.dispatch(run_seconds=10)
    ann = _message("ann@x.io")
    assert (ann.status, ann.attempts) == (MessageStatus.FAILED, max_attempts)
    assert "421" in ann.last_error
    assert smtp.rcpt_seen["ann@x.io"] == max_attempts
    campaign.refresh_from_db()
    assert campaign.failed_count == 1 and campaign.status == CampaignStatus.COMPLETED


def test_a_send_that_times_out_is_unknown_and_the_rest_of_the_batch_is_delivered_once(owner, smtp, settings):
    settings.EMAIL_TIMEOUT = 0.5
    smtp.data_delay["ann@x.io"] = 1.5  # the server takes the message but answers too late
    campaign = _running(owner, ["ann@x.io", "bob@x.io", "cy@x.io"])
    dispatch.dispatch(run_seconds=10)
    received = Counter(smtp.received())
    assert received == {"ann@x.io": 1, "bob@x.io": 1, "cy@x.io": 1}  # none twice: never resent blindly
    ann = _message("ann@x.io")
    assert (ann.status, ann.attempts) == (MessageStatus.UNKNOWN, 1)
    statuses = {m.recipient: m.status for m in Message.objects.filter(campaign=campaign)}
    assert statuses == {"ann@x.io": "unknown", "bob@x.io": "sent", "cy@x.io": "sent"}


def test_a_template_that_cannot_render_fails_its_messages_without_stopping_the_dispatcher(api, owner, smtp):
    lst = SubscriberListFactory(owner=owner, name="L")
    SubscriberFactory(list=lst, email="ann@x.io")
    response = api.post("/api/v1/campaigns", {"name": "C", "channel": "email", "subject": "s", "list_names": ["L"],
                                              "message_content": 'Hi {% include "/etc/passwd" %}'}, format="json")
    if response.status_code == 400:  # refused at once is as good: nothing can read the file
        assert response.json()["field"] == "message_content"
        return
    campaign = Campaign.objects.get()
    services.campaign_start(actor=Actor(user=owner, source="api"), campaign=campaign)
    services.campaign_fan_out(campaign_id=campaign.pk)
    dispatch.dispatch(run_seconds=5)  # must not raise
    message = _message("ann@x.io")
    assert message.status == MessageStatus.FAILED and message.last_error
    assert smtp.messages == []


# --- Auto-pause ----------------------------------------------------------------------------------


def test_a_campaign_whose_sends_mostly_fail_pauses_itself_and_says_why(owner, smtp, settings):
    settings.DISPATCH_PAUSE_WINDOW, settings.DISPATCH_PAUSE_FAILURE_RATE = 4, 0.2
    addresses = [f"p{i}@x.io" for i in range(10)]
    for address in addresses:
        smtp.always[address] = "550 5.1.1 user unknown"
    campaign = _running(owner, addresses)
    dispatch.dispatch(run_seconds=10, batch_size=2)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert campaign.status_reason == "paused automatically: 4 of the last 4 messages failed"
    counts = Counter(Message.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert counts == {MessageStatus.FAILED: 4, MessageStatus.QUEUED: 6}  # it stopped sending
    assert sum(smtp.rcpt_seen.values()) == 4
    row = AuditLog.objects.get(entity_type="campaign", entity_id=str(campaign.pk), after__status="paused")
    assert row.actor_id is None and "paused automatically" in row.user_action


def test_a_campaign_with_few_failures_keeps_going(owner, smtp, settings):
    settings.DISPATCH_PAUSE_WINDOW, settings.DISPATCH_PAUSE_FAILURE_RATE = 5, 0.2
    addresses = [f"p{i}@x.io" for i in range(10)]
    smtp.always["p0@x.io"] = smtp.always["p7@x.io"] = "550 5.1.1 user unknown"  # 1 in each window of 5
    campaign = _running(owner, addresses)
    dispatch.dispatch(run_seconds=10, batch_size=5)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.failed_count) == (CampaignStatus.COMPLETED, 8, 2)
    assert campaign.status_reason == ""


# --- Expired leases ------------------------------------------------------------------------------


def test_requeue_expired_leases_sorts_each_message_by_what_may_have_happened(owner, settings):
    settings.SMS_BACKEND = "campaigns.channels.sms.ConsoleBackend"  # not idempotent, like SMTP
    campaign = _running(owner, ["a@x.io", "b@x.io", "c@x.io", "d@x.io"])
    claimed = dispatch.claim(token="dead-worker", limit=10)
    assert len(claimed) == 4
    past = timezone.now() - timedelta(seconds=1)
    Message.objects.filter(recipient="a@x.io").update(leased_until=past)
    Message.objects.filter(recipient="b@x.io").update(leased_until=past, send_started_at=past)
    Message.objects.filter(recipient="c@x.io").update(leased_until=past, attempts=3)
    # d@x.io: its lease has not expired; its worker may still be sending it.

    result = dispatch.requeue_expired_leases()

    assert result == {MessageStatus.QUEUED: 1, MessageStatus.UNKNOWN: 1, MessageStatus.FAILED: 1}
    a, b, c, d = (_message(f"{x}@x.io") for x in "abcd")
    assert (a.status, a.lease_token, a.leased_until, a.last_error) == (MessageStatus.QUEUED, "", None, "worker lost; requeued")
    assert (b.status, b.send_started_at) == (MessageStatus.UNKNOWN, None) and "outcome unknown" in b.last_error
    assert (c.status, c.last_error) == (MessageStatus.FAILED, "worker lost 3 times")
    assert (d.status, d.lease_token) == (MessageStatus.SENDING, "dead-worker")
    campaign.refresh_from_db()
    assert (campaign.unknown_count, campaign.failed_count) == (1, 1)
    assert dispatch.requeue_expired_leases() == {}


def test_an_in_flight_message_on_an_idempotent_channel_goes_back_to_the_queue(owner, sms_outbox):
    campaign = _running(owner, ["+14155552671"], channel="sms")
    dispatch.claim(token="dead-worker", limit=10)
    past = timezone.now() - timedelta(seconds=1)
    Message.objects.filter(campaign=campaign).update(leased_until=past, send_started_at=past)
    assert dispatch.requeue_expired_leases() == {MessageStatus.QUEUED: 1}
    dispatch.dispatch(run_seconds=5)
    message = Message.objects.get(campaign=campaign)
    assert (message.status, message.attempts) == (MessageStatus.SENT, 2)
    assert [m.uid for m in sms_outbox] == [str(message.uid)]  # the same idempotency key


def test_a_worker_whose_lease_was_taken_over_sends_nothing(owner, smtp):
    campaign = _running(owner, ["ann@x.io"])
    stale = dispatch.claim(token="slow-worker", limit=10)
    Message.objects.filter(campaign=campaign).update(leased_until=timezone.now() - timedelta(seconds=1))
    dispatch.requeue_expired_leases()
    fresh = dispatch.claim(token="new-worker", limit=10)
    assert [m.id for m in fresh] == [m.id for m in stale]

    renderer = dispatch.Renderer()
    assert dispatch.send_batch(stale, "slow-worker", renderer) == Counter()
    assert smtp.messages == []
    outcomes = dispatch.send_batch(fresh, "new-worker", renderer)
    assert outcomes == Counter({(campaign.pk, MessageStatus.SENT): 1})
    assert smtp.received() == ["ann@x.io"]
    message = _message("ann@x.io")
    assert (message.status, message.attempts, message.lease_token) == (MessageStatus.SENT, 2, "")


# --- Claims --------------------------------------------------------------------------------------


def test_a_claim_leases_the_oldest_due_messages_and_counts_the_attempt(owner, settings):
    settings.DISPATCH_LEASE_SECONDS = 120
    campaign = _running(owner, [f"p{i}@x.io" for i in range(5)])
    Message.objects.filter(recipient="p0@x.io").update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    before = timezone.now()
    claimed = dispatch.claim(token="w1", limit=3)
    assert [m.recipient for m in claimed] == ["p1@x.io", "p2@x.io", "p3@x.io"]
    assert all(m.attempts == 1 and m.campaign_id == campaign.pk for m in claimed)
    for message in Message.objects.filter(pk__in=[m.id for m in claimed]):
        assert (message.status, message.lease_token) == (MessageStatus.SENDING, "w1")
        assert 119 <= (message.leased_until - before).total_seconds() <= 125


def test_a_message_locked_by_one_worker_is_skipped_by_another(owner):
    _running(owner, [f"p{i}@x.io" for i in range(10)])
    locked = threading.Event()
    release = threading.Event()
    held: list[int] = []

    def first_worker() -> None:
        try:
            with transaction.atomic():
                ids = list(Message.objects.select_for_update().filter(status="queued").order_by("id")
                           .values_list("id", flat=True)[:3])
                held.extend(ids)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert locked.wait(10)
        second = dispatch.claim(token="w2", limit=10)  # would block without SKIP LOCKED
    finally:
        release.set()
        thread.join()
    assert len(second) == 7 and not set(held) & {m.id for m in second}
    third = dispatch.claim(token="w3", limit=10)
    assert sorted(m.id for m in third) == sorted(held)


def test_two_concurrent_claims_never_share_a_message(owner):
    _running(owner, [f"p{i}@x.io" for i in range(60)])
    barrier = threading.Barrier(2)
    results: dict[str, list[int]] = {}

    def worker(token: str) -> None:
        try:
            barrier.wait(10)
            results[token] = [m.id for m in dispatch.claim(token=token, limit=40)]
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(token,)) for token in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(results["w1"]) & set(results["w2"])
    assert len(results["w1"]) + len(results["w2"]) == 60
    tokens = dict(Message.objects.values_list("id", "lease_token"))
    assert all(tokens[i] == "w1" for i in results["w1"]) and all(tokens[i] == "w2" for i in results["w2"])
    assert set(Message.objects.values_list("attempts", flat=True)) == {1}


def test_kicks_never_queue_more_dispatchers_than_slots(db, settings):
    from django_q.models import OrmQ

    from campaigns.models import DispatchSlot
    from campaigns.services import dispatch_slot_release, kick_dispatchers

    settings.DISPATCH_WORKERS = 2
    OrmQ.objects.all().delete()
    assert kick_dispatchers() == 2
    assert kick_dispatchers() == 0  # both slots held by queued runs
    assert OrmQ.objects.count() == 2
    dispatch_slot_release(0)
    assert kick_dispatchers() == 1
    DispatchSlot.objects.update(busy_until=timezone.now() - timedelta(seconds=1))  # their workers died
    assert kick_dispatchers() == 2


# --- Pause and cancel reach messages already claimed ---------------------------------------------


def test_a_pause_stops_the_sends_of_a_batch_a_worker_already_claimed(owner, smtp):
    campaign = _running(owner, [f"p{i}@x.io" for i in range(6)])
    token = "claim-before-pause"
    batch = dispatch.claim(token=token, limit=10)
    assert len(batch) == 6
    services.campaign_pause(actor=Actor(user=owner, source="api"), campaign=campaign)

    outcomes = dispatch.send_batch(batch, token, dispatch.Renderer(), gate=dispatch.CampaignGate())

    assert smtp.received() == [] and not outcomes
    states = list(Message.objects.filter(campaign=campaign).values_list("status", "attempts", "lease_token"))
    assert states == [(MessageStatus.QUEUED, 0, "")] * 6  # back in the queue, the attempt refunded


def test_a_pause_in_the_middle_of_a_batch_stops_the_rest_within_a_second(owner, smtp):
    campaign = _running(owner, [f"m{i}@x.io" for i in range(4)])
    token = "claim-mid-batch"
    batch = dispatch.claim(token=token, limit=10)
    gate = dispatch.CampaignGate()
    sent_before_pause = []

    def progress(outcomes):
        # After the first send the operator pauses; the gate's next look (forced here) sees it.
        if not sent_before_pause:
            sent_before_pause.append(sum(outcomes.values()))
            services.campaign_pause(actor=Actor(user=owner, source="api"), campaign=campaign)
            gate.at = float("-inf")

    dispatch.send_batch(batch, token, dispatch.Renderer(), progress=progress, gate=gate)

    assert len(smtp.received()) == 1
    statuses = Counter(Message.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert statuses == {MessageStatus.SENT: 1, MessageStatus.QUEUED: 3}


def test_outcomes_that_reach_a_completed_campaign_late_are_not_counted_twice(owner, smtp):
    # Worker A has sent the last message but not yet added it to the counters when worker B's run
    # ends, finds nothing left, recounts exactly and completes the campaign.
    campaign = _running(owner, ["last@x.io"])
    token = "worker-a"
    outcomes = dispatch.send_batch(dispatch.claim(token=token, limit=10), token, dispatch.Renderer())
    assert dispatch.finish_campaigns() == [campaign.pk]

    dispatch.apply_outcomes(outcomes)  # worker A's flush, late

    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.total_count) == (CampaignStatus.COMPLETED, 1, 1)
