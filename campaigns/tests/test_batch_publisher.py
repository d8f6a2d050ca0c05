"""The ordered batch publisher (seed 003, campaigns/outbox.py) against real channels: the loopback
SMS gateway (injecting 500s and 400s), a loopback SMTP server, PostgreSQL, and for stop/start a
real qcluster process.

What must hold: an owner's batches go out one after another by batch_sequence and each batch's
items by item_sequence; a transient failure holds the batch (nothing after the item is sent before
it) and the stream (the next batch waits for the commit); a permanent failure fails the item and
then the batch, and the stream moves on; a retry resends only the failed items; every batch ends
with its webhook event for its owner only; the persisted switch stops and restarts a running
worker without losing or repeating an item; concurrent publishers never send an item twice."""

import threading
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import outbox
from campaigns.models import (
    BatchStatus, BatchStream, Campaign, CampaignStatus, Message, MessageBatch, MessageStatus,
)
from campaigns.tests.buckets import rate_limit_row
from campaigns.tests.gateway import Gateway
from campaigns.tests.smtp import serve_smtp
from inboxerr.tests.processes import kill_group, start_qcluster, wait_for
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint
from subscribers.models import Suppression

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_policy(settings):
    settings.DISPATCH_MAX_ATTEMPTS = 3
    settings.DISPATCH_BACKOFF_BASE_SECONDS = 0.05
    settings.DISPATCH_BACKOFF_MAX_SECONDS = 0.2
    settings.OUTBOX_POLL_INTERVAL_SECONDS = 0.2


def phone(batch: int, item: int) -> str:
    """The recipient of item `item` of the test's batch `batch`: the gateway's `to` names the item."""
    return f"+1415555{batch}{item:03d}"


def sms_items(batch: int, count: int) -> list[dict]:
    return [{"request_id": f"{batch}-{i}", "vendor_name": "EVICORE", "channel": "sms", "recipient": phone(batch, i),
             "content": "Item {{ n }}", "variables": {"n": f"{batch}.{i}"}} for i in range(1, count + 1)]


def ingest(client, items: list[dict]) -> MessageBatch:
    response = client.post("/api/v1/batch/process", items, format="json")
    assert response.status_code == 200, response.content
    return MessageBatch.objects.get(batch_id=response.json()["data"]["batch_id"])


def stream_order(*batches: tuple[int, int]) -> list[str]:
    """Every item's recipient in stream order, for (batch number, item count) pairs."""
    return [phone(b, i) for b, count in batches for i in range(1, count + 1)]


def received(gateway: Gateway) -> list[str]:
    return [request.to for request in gateway.requests()]


def fresh(batch: MessageBatch) -> MessageBatch:
    return MessageBatch.objects.get(pk=batch.pk)


def in_thread(target, results: list) -> threading.Thread:
    """Run target() in a thread with its own database connection, appending its result."""
    def run():
        try:
            results.append(target())
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --- Ordering under failure ------------------------------------------------------------------


def test_a_transient_failure_holds_its_batch_and_the_next_batch_waits_for_the_commit(api, owner, sms_gateway):
    first, second, third = (ingest(api, sms_items(b, 5)) for b in (1, 2, 3))
    flaky = phone(2, 3)
    sms_gateway.fail(500, times=1, to=flaky)

    sent, more = outbox.publish(run_seconds=20)

    assert (sent, more) == (15, False)
    # On the wire: batch 1 in item order, batch 2 in order with the failed item re-sent before
    # any later item, then batch 3.
    expected = stream_order((1, 5))
    expected += [phone(2, 1), phone(2, 2), flaky, flaky, phone(2, 4), phone(2, 5)]
    expected += stream_order((3, 5))
    assert received(sms_gateway) == expected
    assert [item.request.to for item in sms_gateway.delivered()] == stream_order((1, 5), (2, 5), (3, 5))

    first, second, third = fresh(first), fresh(second), fresh(third)
    assert [b.status for b in (first, second, third)] == [BatchStatus.COMMITTED] * 3
    assert [(b.sent_count, b.failed_count, b.skipped_count) for b in (first, second, third)] == [(5, 0, 0)] * 3
    retried = Message.objects.get(batch=second, recipient=flaky)
    assert (retried.status, retried.attempts, retried.last_error) == (
        MessageStatus.SENT, 2, "HTTP 500: Internal Server Error")
    # The items held back behind it went back untried: their attempt was refunded.
    assert set(Message.objects.filter(batch__in=[first, second, third]).exclude(pk=retried.pk)
               .values_list("attempts", flat=True)) == {1}
    # Each batch's first send started only after the previous batch was committed.
    for before, after in ((first, second), (second, third)):
        first_send = Message.objects.filter(batch=after).order_by("send_started_at").first()
        assert first_send.sequence == 1
        assert before.committed_at <= first_send.send_started_at
    # And within the stream, sends started in (batch_sequence, item_sequence) order.
    started = Message.objects.filter(batch__owner=owner).order_by("send_started_at")
    assert [(m.batch.sequence, m.sequence) for m in started.select_related("batch")] == [
        (b, i) for b in (1, 2, 3) for i in range(1, 6)]


def test_a_permanent_failure_fails_its_batch_the_stream_moves_on_and_a_retry_resends_only_that_item(
        api, owner, sms_gateway):
    first, second, third = (ingest(api, sms_items(b, 4)) for b in (1, 2, 3))
    refused = phone(2, 2)
    sms_gateway.fail(400, message="Unknown destination handset", to=refused)

    sent, _ = outbox.publish(run_seconds=20)

    assert sent == 11
    assert received(sms_gateway) == stream_order((1, 4), (2, 4), (3, 4))  # refused once, never retried
    failed = Message.objects.get(batch=second, recipient=refused)
    assert (failed.status, failed.attempts, failed.last_error) == (
        MessageStatus.FAILED, 1, "HTTP 400: Unknown destination handset")
    assert set(Message.objects.filter(batch=second).exclude(pk=failed.pk).values_list("status", flat=True)) == {
        MessageStatus.SENT}
    second = fresh(second)
    assert (second.status, second.status_reason, second.sent_count, second.failed_count) == (
        BatchStatus.FAILED, "1 of 4 items failed", 3, 1)
    assert second.committed_at is None and second.finished_at is not None
    third = fresh(third)
    assert third.status == BatchStatus.COMMITTED and third.committed_at >= second.finished_at
    third_committed_at = third.committed_at

    response = api.post(f"/api/v1/outbox/batch/{second.batch_id}/retry")
    assert response.status_code == 200, response.content
    assert response.json()["requeued_items"] == 1
    assert response.json()["batch"]["status"] == BatchStatus.PENDING
    # Only a failed batch can be retried: a second retry before it is sent again is refused.
    assert api.post(f"/api/v1/outbox/batch/{second.batch_id}/retry").status_code == 409
    before = len(sms_gateway.requests())

    sent, more = outbox.publish(run_seconds=20)

    assert (sent, more) == (1, False)
    assert received(sms_gateway)[before:] == [refused]  # that item once more, nothing else
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (MessageStatus.SENT, 1)
    assert failed.provider_message_id == sms_gateway.delivered()[-1].provider_id
    second = fresh(second)
    assert (second.status, second.status_reason, second.sent_count, second.failed_count) == (
        BatchStatus.COMMITTED, "", 4, 0)
    assert fresh(third).committed_at == third_committed_at  # the other batches were left alone
    status = api.get(f"/api/v1/outbox/batch/{second.batch_id}/status").json()
    assert status["status"] == "committed"
    assert status["items"] == {"pending": 0, "sending": 0, "sent": 4, "failed": 0, "skipped": 0}


def test_a_retry_while_the_publisher_still_holds_the_stream_is_sent_and_committed_in_that_run(
        api, owner, sms_gateway):
    """The failed batch is retried while the same publisher run is busy with the next batch: that
    run must pick the retried batch up again (begin it, send it, commit it), not leave it pending."""
    rate_limit_row(name="sms", rate=20, burst=1)
    first = ingest(api, sms_items(1, 3))
    second = ingest(api, sms_items(2, 30))  # about 1.5 s at 20/s: the retry lands meanwhile
    sms_gateway.fail(400, message="Unknown destination handset", to=phone(1, 2))
    results: list = []
    run = in_thread(lambda: outbox.publish(run_seconds=20), results)

    wait_for(lambda: MessageBatch.objects.filter(pk=first.pk, status=BatchStatus.FAILED).exists()
             and Message.objects.filter(batch=second, status=MessageStatus.SENT).exists(),
             timeout=20, what="batch 1 failed and batch 2 under way")
    response = api.post(f"/api/v1/outbox/batch/{first.batch_id}/retry")
    assert response.status_code == 200, response.content
    assert fresh(second).status == BatchStatus.PROCESSING  # the run is still sending batch 2
    run.join(timeout=30)

    assert not run.is_alive()
    assert results == [(33, False)]  # 2 + 30, then the retried item
    assert fresh(first).status == BatchStatus.COMMITTED
    assert fresh(second).status == BatchStatus.COMMITTED
    assert received(sms_gateway) == stream_order((1, 3), (2, 30)) + [phone(1, 2)]


# --- Webhook events --------------------------------------------------------------------------


def test_batch_events_reach_the_owners_subscribed_endpoints_only(api, outsider_api, owner, outsider, sms_gateway):
    mine = WebhookEndpoint.objects.create(owner=owner, url="https://hooks.example.com/batches",
                                          events=["batch.committed", "batch.failed"], secret="whsec_a")
    not_subscribed = WebhookEndpoint.objects.create(owner=owner, url="https://hooks.example.com/campaigns",
                                                    events=["campaign.completed"], secret="whsec_b")
    theirs = WebhookEndpoint.objects.create(owner=outsider, url="https://hooks.example.net/all", events=[],
                                            secret="whsec_c")
    committed = ingest(api, sms_items(1, 3))
    failing = ingest(api, sms_items(2, 3))
    their_batch = ingest(outsider_api, sms_items(3, 2))
    sms_gateway.fail(400, message="Unknown destination handset", to=phone(2, 1))

    sent, _ = outbox.publish(run_seconds=20)

    assert sent == 7
    deliveries = list(WebhookDelivery.objects.filter(endpoint=mine).order_by("id"))
    assert [(d.event, d.payload["batch_id"]) for d in deliveries] == [
        ("batch.committed", committed.batch_id), ("batch.failed", failing.batch_id)]
    assert {key: deliveries[0].payload[key] for key in ("batch_sequence", "status", "total_items", "sent", "failed",
                                                        "skipped")} == {
        "batch_sequence": 1, "status": "committed", "total_items": 3, "sent": 3, "failed": 0, "skipped": 0}
    assert {key: deliveries[1].payload[key] for key in ("batch_sequence", "status", "total_items", "sent", "failed",
                                                        "skipped")} == {
        "batch_sequence": 2, "status": "failed", "total_items": 3, "sent": 2, "failed": 1, "skipped": 0}
    assert deliveries[0].payload["vendor_counts"] == {"EVICORE": 3}
    assert all(d.status == WebhookDelivery.Status.PENDING for d in deliveries)
    assert not WebhookDelivery.objects.filter(endpoint=not_subscribed).exists()
    # The outsider's endpoint hears of the outsider's batch, and of nothing of the owner's.
    assert [(d.event, d.payload["batch_id"], d.payload["batch_sequence"])
            for d in WebhookDelivery.objects.filter(endpoint=theirs)] == [
        ("batch.committed", their_batch.batch_id, 1)]


# --- Stop and start ----------------------------------------------------------------------------


@pytest.mark.slow
def test_stop_and_start_are_honoured_by_a_running_worker(api, superuser_api, owner):
    gateway = Gateway().start()
    rate_limit_row(name="sms", rate=25, burst=2)
    batch = ingest(api, sms_items(1, 100))  # about 4 s at 25/s; the ingest queued a publisher run
    worker = start_qcluster(
        Q_WORKERS="1", SMS_BACKEND="campaigns.channels.sms.HttpGatewayBackend", SMS_GATEWAY_URL=gateway.url,
        OUTBOX_POLL_INTERVAL_SECONDS="1", DISPATCH_SEND_TIMEOUT_SECONDS="1", DISPATCH_LEASE_SECONDS="30",
    )
    try:
        wait_for(lambda: len(gateway.requests()) >= 10, timeout=60, what="the worker to start sending")
        response = superuser_api.post("/api/v1/outbox/stop")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "stopped"

        # The worker notices, hands back what it had claimed and lets the stream go.
        wait_for(lambda: not Message.objects.filter(batch=batch, status=MessageStatus.SENDING).exists()
                 and not BatchStream.objects.filter(owner=owner, leased_until__isnull=False).exists(),
                 timeout=15, what="the publisher to stop")
        stopped_at = len(gateway.requests())
        time.sleep(2)  # two poll intervals: a worker still running would have sent ~50 more by now
        assert len(gateway.requests()) == stopped_at < 100
        assert received(gateway) == stream_order((1, stopped_at))
        counts = Counter(Message.objects.filter(batch=batch).values_list("status", flat=True))
        assert counts == {MessageStatus.SENT: stopped_at, MessageStatus.QUEUED: 100 - stopped_at}
        assert fresh(batch).status == BatchStatus.PROCESSING
        status = api.get("/api/v1/outbox/status").json()
        assert (status["status"], status["running"], status["changed_by"]) == ("stopped", False, "root")
        assert status["items_unsent"] == 100 - stopped_at
        assert status["active_publishers"] == 0
        items = api.get(f"/api/v1/outbox/batch/{batch.batch_id}/status").json()["items"]
        assert (items["pending"], items["sending"], items["sent"]) == (100 - stopped_at, 0, stopped_at)

        response = superuser_api.post("/api/v1/outbox/start")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "running"
        wait_for(lambda: MessageBatch.objects.filter(pk=batch.pk, status=BatchStatus.COMMITTED).exists(),
                 timeout=60, what="the batch to be committed after the restart")
    finally:
        kill_group(worker)
        gateway.stop()

    assert received(gateway) == stream_order((1, 100))  # every item exactly once, in item order
    batch = fresh(batch)
    assert (batch.sent_count, batch.failed_count) == (100, 0)
    assert api.get("/api/v1/outbox/status").json()["status"] == "running"


# --- Mixed channels ----------------------------------------------------------------------------


class TimedInbox:
    """A loopback SMTP server's handler that notes when each message arrived (time.monotonic(),
    the clock the SMS gateway stamps its requests with)."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        with self.lock:
            self.messages.append((time.monotonic(), envelope.rcpt_tos[0],
                                  message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def test_items_of_mixed_channels_are_sent_in_item_order(api, sms_gateway, settings):
    inbox = TimedInbox()
    channels = ["email", "email", "sms", "email", "sms", "sms", "email", "sms"]
    items, order = [], []
    for i, channel in enumerate(channels, start=1):
        if channel == "email":
            recipient = f"item{i}@example.com"
            items.append({"request_id": str(i), "channel": "email", "recipient": recipient,
                          "subject": "Item {{ n }}", "content": "Hello, item {{ n }}.", "variables": {"n": i}})
        else:
            recipient = phone(1, i)
            items.append({"request_id": str(i), "channel": "sms", "recipient": recipient,
                          "content": "Item {{ n }}", "variables": {"n": i}})
        order.append(recipient)
    with serve_smtp(inbox, settings):
        batch = ingest(api, items)
        sent, _ = outbox.publish(run_seconds=20)

    assert sent == 8
    assert fresh(batch).status == BatchStatus.COMMITTED
    arrivals = [(at, to) for at, to, _ in inbox.messages] + [(r.at, r.to) for r in sms_gateway.requests()]
    assert [to for _, to in sorted(arrivals)] == order
    assert [message["Subject"] for _, _, message in inbox.messages] == ["Item 1", "Item 2", "Item 4", "Item 7"]
    assert [r.text for r in sms_gateway.requests()] == ["Item 3", "Item 5", "Item 6", "Item 8"]


# --- Concurrent publishers ------------------------------------------------------------------------


def test_concurrent_publishers_never_send_an_item_twice_and_keep_the_order(api, owner, sms_gateway, settings):
    settings.DISPATCH_LEASE_SECONDS = 3  # a publisher renews (and checks) its stream lease every second
    rate_limit_row(name="sms", rate=25, burst=1)
    first, second = ingest(api, sms_items(1, 40)), ingest(api, sms_items(2, 40))  # about 3 s at 25/s
    lease = BatchStream.objects.filter(owner=owner)

    # A stream another run holds is not taken: a publisher finds nothing to do.
    lease.update(lease_token="another-run", leased_until=timezone.now() + timedelta(seconds=60))
    assert outbox.publish(run_seconds=5) == (0, False)
    assert received(sms_gateway) == []
    lease.update(lease_token="", leased_until=None)

    results_a: list = []
    run_a = in_thread(lambda: (outbox.publish(run_seconds=30), len(sms_gateway.requests())), results_a)
    taken = wait_for(lambda: lease.values_list("leased_until", flat=True).first(), timeout=10,
                     what="publisher A to take the stream")
    wait_for(lambda: len(sms_gateway.requests()) >= 5, timeout=20, what="publisher A to send")
    # While A holds the stream, a second publisher run has nothing to take.
    assert outbox.publish(run_seconds=5) == (0, False)
    # Just after A renewed its lease, the lease lapses as if A had stalled past it, and publisher B
    # takes the stream while A is still sending the items it claimed (A finds out within a second).
    wait_for(lambda: lease.values_list("leased_until", flat=True).first() != taken, timeout=10,
             what="publisher A to renew its lease")
    lease.update(lease_token="lapsed", leased_until=timezone.now() - timedelta(seconds=1))
    results_b: list = []
    run_b = in_thread(lambda: outbox.publish(run_seconds=30), results_b)
    run_a.join(timeout=40)
    run_b.join(timeout=40)

    assert not run_a.is_alive() and not run_b.is_alive()
    ((sent_a, _), received_when_a_ended), (sent_b, _) = results_a[0], results_b[0]
    # A stopped once it found its lease gone, and B finished the stream.
    assert received_when_a_ended < 80
    assert sent_a + sent_b == 80 and sent_b > 0
    assert received(sms_gateway) == stream_order((1, 40), (2, 40))  # each item once, in order
    assert [fresh(b).status for b in (first, second)] == [BatchStatus.COMMITTED] * 2
    assert not Message.objects.filter(batch__in=[first, second]).exclude(status=MessageStatus.SENT).exists()


def test_a_publisher_that_loses_its_stream_stops_for_good_and_leaves_the_rest_pending(api, owner, sms_gateway,
                                                                                     settings):
    settings.DISPATCH_LEASE_SECONDS = 3  # a publisher checks its stream lease every second
    rate_limit_row(name="sms", rate=25, burst=1)
    first, second = ingest(api, sms_items(1, 30)), ingest(api, sms_items(2, 30))
    results: list = []
    run = in_thread(lambda: (outbox.publish(run_seconds=30), len(sms_gateway.requests())), results)
    wait_for(lambda: len(sms_gateway.requests()) >= 5, timeout=20, what="the publisher to send")
    # Another run takes the stream (as after a stall past the lease) but sends nothing yet.
    BatchStream.objects.filter(owner=owner).update(lease_token="another-run",
                                                   leased_until=timezone.now() + timedelta(seconds=60))
    run.join(timeout=40)

    assert not run.is_alive()
    (sent, _), received_when_it_ended = results[0]
    assert sent == received_when_it_ended == len(sms_gateway.requests()) < 60
    # What it had claimed went back to the queue, untried: nothing is left in flight.
    counts = Counter(Message.objects.filter(batch__in=[first, second]).values_list("status", flat=True))
    assert counts == {MessageStatus.SENT: sent, MessageStatus.QUEUED: 60 - sent}

    # That other run ends without sending (its lease released); the next run finishes the stream.
    BatchStream.objects.filter(owner=owner).update(lease_token="", leased_until=None)
    assert outbox.publish(run_seconds=20) == (60 - sent, False)
    assert received(sms_gateway) == stream_order((1, 30), (2, 30))
    assert [fresh(b).status for b in (first, second)] == [BatchStatus.COMMITTED] * 2


def test_a_batch_a_dead_worker_left_in_flight_is_resumed_in_order(api, owner, sms_gateway):
    batch = ingest(api, sms_items(1, 4))
    expired = timezone.now() - timedelta(seconds=1)
    items = {m.sequence: m for m in Message.objects.filter(batch=batch)}
    MessageBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING, started_at=timezone.now())
    Message.objects.filter(pk=items[1].pk).update(status=MessageStatus.SENT, attempts=1, sent_at=timezone.now())
    # The worker died sending item 2 (in flight) with items 3 and 4 claimed; its leases ran out.
    Message.objects.filter(pk__in=[items[2].pk, items[3].pk, items[4].pk]).update(
        status=MessageStatus.SENDING, lease_token="dead-worker", leased_until=expired, attempts=1)
    Message.objects.filter(pk=items[2].pk).update(send_started_at=expired)
    # A campaign message with a lapsed lease is the sweeper's business, not this batch's publisher.
    campaign = Campaign.objects.create(owner=owner, name="Other", channel="sms", status=CampaignStatus.RUNNING)
    other = Message.objects.create(campaign=campaign, channel="sms", recipient=phone(9, 1), attempts=1,
                                   status=MessageStatus.SENDING, lease_token="dead-worker", leased_until=expired)

    sent, _ = outbox.publish(run_seconds=20)

    # The gateway deduplicates on the idempotency key, so the in-flight item goes out again.
    assert sent == 3
    assert received(sms_gateway) == [phone(1, 2), phone(1, 3), phone(1, 4)]
    batch = fresh(batch)
    assert (batch.status, batch.sent_count) == (BatchStatus.COMMITTED, 4)
    assert Message.objects.get(pk=items[2].pk).attempts == 2  # the lost try counts
    other.refresh_from_db()
    assert (other.status, other.lease_token) == (MessageStatus.SENDING, "dead-worker")


# --- Suppressed items -----------------------------------------------------------------------------


def test_suppressed_items_are_skipped_and_do_not_block_the_commit(api, owner, sms_gateway):
    Suppression.objects.create(owner=owner, channel="sms", address=phone(1, 1))
    Suppression.objects.create(owner=owner, channel="sms", address=phone(2, 3))
    all_suppressed = ingest(api, sms_items(1, 1))
    some_suppressed = ingest(api, sms_items(2, 5))
    after = ingest(api, sms_items(3, 2))
    assert (all_suppressed.skipped_count, some_suppressed.skipped_count) == (1, 1)

    sent, more = outbox.publish(run_seconds=20)

    assert (sent, more) == (6, False)
    assert received(sms_gateway) == [phone(2, 1), phone(2, 2), phone(2, 4), phone(2, 5), phone(3, 1), phone(3, 2)]
    states = [(b.status, b.sent_count, b.skipped_count, b.failed_count)
              for b in map(fresh, (all_suppressed, some_suppressed, after))]
    assert states == [(BatchStatus.COMMITTED, 0, 1, 0), (BatchStatus.COMMITTED, 4, 1, 0),
                      (BatchStatus.COMMITTED, 2, 0, 0)]
    skipped = Message.objects.get(batch=some_suppressed, recipient=phone(2, 3))
    assert (skipped.status, skipped.skip_reason, skipped.attempts) == (MessageStatus.SKIPPED, "suppressed", 0)


def test_an_item_whose_address_is_suppressed_after_the_ingest_is_skipped_at_send_time(api, owner, sms_gateway):
    from inboxerr.actors import Actor
    from subscribers.services import address_unsubscribe

    batch = ingest(api, sms_items(1, 4))
    assert batch.skipped_count == 0
    # The second recipient texts STOP while the batch waits in its stream.
    address_unsubscribe(actor=Actor.system(), owner_id=owner.pk, channel="sms", address=phone(1, 2))

    sent, more = outbox.publish(run_seconds=20)

    assert (sent, more) == (3, False)
    assert received(sms_gateway) == [phone(1, 1), phone(1, 3), phone(1, 4)]
    batch = fresh(batch)
    assert (batch.status, batch.sent_count, batch.skipped_count, batch.failed_count) == (
        BatchStatus.COMMITTED, 3, 1, 0)
    skipped = Message.objects.get(batch=batch, recipient=phone(1, 2))
    assert (skipped.status, skipped.skip_reason, skipped.attempts) == (MessageStatus.SKIPPED, "suppressed", 0)
