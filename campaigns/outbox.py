"""The ordered publisher of the batch API (seed 003): a transactional outbox sent in order.

Each owner's batches form a stream. A publisher run leases one stream at a time (a checked
update of its BatchStream row: one publisher per stream, any number of workers) and sends its
head batch (the one `processing`, else the lowest `batch_sequence` still `pending`) item by item
in `item_sequence` order, through the dispatcher's channel backends, rate limits, leases and
retry policy. A transient failure holds the batch: the item waits for its backoff and nothing
after it is sent before it. A permanent failure marks the item failed and the rest of the batch
goes on. When no item is left to send the batch is `committed` (all sent) or `failed`, with an
audit row and a `batch.*` webhook event in the same transaction, and only then does the stream
move to its next batch. The persisted switch (POST /api/v1/outbox/stop) is read before every
item, at most OUTBOX_POLL_INTERVAL_SECONDS old.
"""

import logging
import time
import uuid
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone
from django_q.tasks import async_task

from audit.services import audit_record
from campaigns.batches import FAILED_STATUSES, outbox_enabled
from campaigns.dispatch import ChannelRun, Claimed, Renderer, THROTTLED, _fast_commits, requeue_expired_leases
from campaigns.models import (
    BATCH_SENDING_ORDER, OPEN_BATCH_STATUSES, BatchStatus, BatchStream, Message, MessageBatch, MessageStatus,
)
from campaigns.ratelimit import rate_limit_of
from inboxerr.actors import Actor
from inboxerr.metrics import counter_add, histogram_observe
from inboxerr.webhooks.events import WebhookEvent
from inboxerr.webhooks.services import event_emit
from subscribers.models import Suppression

logger = logging.getLogger("inboxerr.outbox")
OPEN = OPEN_BATCH_STATUSES
UNSENT = (MessageStatus.QUEUED, MessageStatus.SENDING)


def outbox_kick() -> None:
    """Queue a publisher run (called when a batch is stored, retried, or the switch turned on);
    a run that finds every stream taken ends at once."""
    if outbox_enabled():
        async_task("campaigns.tasks.publish", task_name="outbox-publish")


def outbox_has_work() -> bool:
    """A stream with an open batch that no publisher holds (the minute tick asks)."""
    now = timezone.now()
    owners = MessageBatch.objects.filter(status__in=OPEN).values("owner_id")
    return BatchStream.objects.filter(owner_id__in=owners).filter(
        Q(leased_until__isnull=True) | Q(leased_until__lt=now)).exists()


class Switch:
    """The persisted on/off switch, read from the database at most once per poll interval."""

    def __init__(self) -> None:
        self.read_at, self.value = float("-inf"), True

    def on(self) -> bool:
        if time.monotonic() - self.read_at >= settings.OUTBOX_POLL_INTERVAL_SECONDS:
            self.value, self.read_at = outbox_enabled(), time.monotonic()
        return self.value


class StreamLease:
    """This run's hold on one owner's stream, renewed as it works."""

    def __init__(self, owner_id: int, token: str):
        self.owner_id, self.token, self.renewed = owner_id, token, time.monotonic()
        self.lost = False  # once another run has the stream, it stays lost to this one

    @staticmethod
    def seconds() -> int:
        return settings.DISPATCH_LEASE_SECONDS

    @classmethod
    def take(cls, token: str, skip: set) -> "StreamLease | None":
        now = timezone.now()
        free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
        owners = MessageBatch.objects.filter(status__in=OPEN).values("owner_id")
        candidates = (
            BatchStream.objects.filter(owner_id__in=owners).filter(free).exclude(owner_id__in=skip)
            .order_by(F("leased_until").asc(nulls_first=True)).values_list("owner_id", flat=True)[:20]
        )
        for owner_id in candidates:
            until = now + timedelta(seconds=cls.seconds())
            if BatchStream.objects.filter(pk=owner_id).filter(free).update(lease_token=token, leased_until=until):
                return cls(owner_id, token)
        return None

    def keep(self) -> bool:
        """Renew the lease when a third of it has passed; False if another run took the stream."""
        if self.lost:
            return False
        if time.monotonic() - self.renewed < self.seconds() / 3:
            return True
        until = timezone.now() + timedelta(seconds=self.seconds())
        kept = BatchStream.objects.filter(pk=self.owner_id, lease_token=self.token).update(leased_until=until)
        self.renewed, self.lost = time.monotonic(), not kept
        return bool(kept)

    def release(self) -> None:
        BatchStream.objects.filter(pk=self.owner_id, lease_token=self.token).update(leased_until=None, lease_token="")


def head_batch(owner_id: int) -> MessageBatch | None:
    """The batch a stream sends now: the one already processing, else its oldest pending one."""
    return (
        MessageBatch.objects.filter(owner_id=owner_id, status__in=OPEN).order_by(*BATCH_SENDING_ORDER).first()
    )


def batch_begin(batch: MessageBatch) -> None:
    if batch.status == BatchStatus.PENDING:
        now = timezone.now()
        MessageBatch.objects.filter(pk=batch.pk, status=BatchStatus.PENDING).update(
            status=BatchStatus.PROCESSING, started_at=batch.started_at or now, updated_at=now)
        batch.status = BatchStatus.PROCESSING
    requeue_expired_leases(batch_id=batch.pk)  # items a dead worker left in flight


def claim_items(batch: MessageBatch, token: str, start: int = 0) -> list[Claimed] | float | None:
    """The next items to send, in order: the first unsent ones that are due, all of one channel.
    None when nothing is left to send; seconds to wait when the first unsent item is not due.
    `start`: an item_sequence before which every item is known to be done (the run's cursor), so
    a claim deep into a large batch does not walk past every item already sent."""
    now = timezone.now()
    rows = list(
        Message.objects.filter(batch=batch, sequence__gte=start, status__in=UNSENT).order_by("sequence")
        .values_list("id", "status", "channel", "next_attempt_at")[:settings.OUTBOX_BATCH_SIZE]
    )
    if not rows:
        return None
    ids = []
    for message_id, status, channel, due in rows[:_claimable(rows[0][2])]:
        if status == MessageStatus.SENDING or channel != rows[0][2] or (due is not None and due > now):
            break
        ids.append(message_id)
    if not ids:
        _, status, _, due = rows[0]
        if status == MessageStatus.SENDING:  # left by a run that lost the stream: back once its lease ends
            requeue_expired_leases(batch_id=batch.pk)
            return settings.OUTBOX_POLL_INTERVAL_SECONDS
        return max((due - now).total_seconds(), 0.01)
    with transaction.atomic():
        # An address suppressed since the batch was stored (a STOP, an unsubscribe, a bounce) is not
        # sent to: its item is skipped with the reason of one suppressed at ingest, in one statement.
        suppressed = Suppression.objects.filter(owner_id=batch.owner_id, channel=OuterRef("channel"),
                                                address=OuterRef("recipient"))
        Message.objects.filter(pk__in=ids, status=MessageStatus.QUEUED).filter(Exists(suppressed)).update(
            status=MessageStatus.SKIPPED, skip_reason="suppressed", next_attempt_at=None)
        Message.objects.filter(pk__in=ids, status=MessageStatus.QUEUED).update(
            status=MessageStatus.SENDING, lease_token=token, send_started_at=None,
            leased_until=now + timedelta(seconds=settings.DISPATCH_LEASE_SECONDS), attempts=F("attempts") + 1,
        )
        rows = Message.objects.filter(pk__in=ids, lease_token=token).order_by("sequence").values_list(
            "id", "uid", "campaign_id", "subscriber_id", "channel", "recipient", "variables", "attempts",
            "batch_id", "template_id", "subject", "content", "sequence",
        )
        return [Claimed(*row) for row in rows]


def _claimable(channel: str) -> int:
    """Items to claim at once: no more than the channel's rate limit lets through in half a lease,
    so a slow channel never sees its claimed items' leases run out before their turn."""
    limit = rate_limit_of(channel)
    if limit is None or limit[0] <= 0:
        return settings.OUTBOX_BATCH_SIZE
    return max(1, min(settings.OUTBOX_BATCH_SIZE, int(limit[0] * settings.DISPATCH_LEASE_SECONDS / 2)))


def apply_batch_outcomes(batch: MessageBatch, channel: str, outcomes: Counter) -> int:
    sent = sum(n for (_, status), n in outcomes.items() if status == MessageStatus.SENT)
    failed = sum(n for (_, status), n in outcomes.items() if status in FAILED_STATUSES)
    if sent or failed:
        MessageBatch.objects.filter(pk=batch.pk).update(
            sent_count=F("sent_count") + sent, failed_count=F("failed_count") + failed, updated_at=timezone.now())
    if sent:
        counter_add("messages_sent", sent, channel=channel)
        counter_add("batch_items_sent", sent, channel=channel)
    return sent


def batch_finish(batch: MessageBatch) -> MessageBatch | None:
    """Commit (every item sent or skipped) or fail (any failed) a batch with nothing left to send."""
    with transaction.atomic():
        batch = MessageBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != BatchStatus.PROCESSING or Message.objects.filter(batch=batch, status__in=UNSENT).exists():
            return None
        counts = dict(Message.objects.filter(batch=batch).values_list("status").annotate(n=Count("pk"))
                      .values_list("status", "n"))
        batch.sent_count = counts.get(MessageStatus.SENT, 0)
        batch.failed_count = sum(counts.get(status, 0) for status in FAILED_STATUSES)
        batch.skipped_count = counts.get(MessageStatus.SKIPPED, 0)
        now = timezone.now()
        if batch.failed_count:
            batch.status, batch.finished_at = BatchStatus.FAILED, now
            batch.status_reason = f"{batch.failed_count:,} of {batch.total_items:,} items failed"
            event = WebhookEvent.BATCH_FAILED
        else:
            batch.status, batch.committed_at, batch.finished_at = BatchStatus.COMMITTED, now, now
            batch.status_reason = ""
            event = WebhookEvent.BATCH_COMMITTED
        batch.save(update_fields=["status", "status_reason", "sent_count", "failed_count", "skipped_count",
                                  "committed_at", "finished_at", "updated_at"])
        audit_record(
            actor=Actor.system(), action="update", entity_type="message_batch", entity_id=batch.batch_id,
            owner_id=batch.owner_id,
            user_action=f"Batch {batch.batch_id} (#{batch.sequence}) {batch.status}: {batch.sent_count:,} sent, "
            f"{batch.failed_count:,} failed, {batch.skipped_count:,} skipped",
            after={"status": batch.status, "sent": batch.sent_count, "failed": batch.failed_count},
        )
        event_emit(event=event, owner_id=batch.owner_id, payload=batch.event_payload())
        counter_add("batches_finished", status=batch.status)
    logger.info("Batch %s %s", batch.batch_id, batch.status)
    return batch


class StreamRun:
    """Sends one leased stream's batches in order until it is drained, must wait past the run's
    deadline, the switch turns off, or the lease is lost. Returns the messages sent."""

    def __init__(self, lease: StreamLease, renderer: Renderer, switch: Switch, deadline: float):
        self.lease, self.renderer, self.switch, self.deadline = lease, renderer, switch, deadline
        self.begun: set[int] = set()
        self.cursor: dict[int, int] = {}  # per batch: every item before this sequence is done
        self.waiting = False  # stopped because its head item is not due before the deadline

    def halted(self) -> bool:
        return not self.switch.on() or not self.lease.keep()

    def run(self) -> int:
        sent = 0
        while time.monotonic() < self.deadline and not self.halted():
            batch = head_batch(self.lease.owner_id)
            if batch is None:
                break
            if batch.pk not in self.begun or batch.status == BatchStatus.PENDING:  # new, or retried meanwhile
                batch_begin(batch)
                self.begun.add(batch.pk)
                self.cursor[batch.pk] = 0
            loop_started = time.monotonic()
            items = claim_items(batch, self.lease.token, self.cursor[batch.pk])
            if items is None:
                if batch_finish(batch) is None:
                    self.cursor[batch.pk] = 0  # not finished after all: look at the whole batch again
                continue
            if isinstance(items, float):
                if time.monotonic() + items > self.deadline:
                    self.waiting = True
                    break
                time.sleep(min(items, settings.OUTBOX_POLL_INTERVAL_SECONDS))
                continue
            if not items:
                continue  # another run requeued or took them meanwhile
            self.cursor[batch.pk] = items[0].sequence
            outcomes: Counter = Counter()
            channel = items[0].channel
            ChannelRun(channel, self.lease.token, self.renderer, {}, outcomes, ordered=True, halt=self.halted).run(items)
            sent += apply_batch_outcomes(batch, channel, outcomes)
            if outcomes.get((None, THROTTLED)):
                logger.info("Batch %s throttled by the %s provider", batch.batch_id, channel)
            histogram_observe("dispatcher_loop_duration_seconds", time.monotonic() - loop_started)
        return sent


def publish(*, run_seconds: float | None = None) -> tuple[int, bool]:
    """One publisher run: take free streams one after another and send them in order, until
    none is left, the switch is off, or the run time is up. Returns the messages sent, and
    whether the run ended with work left for a successor."""
    _fast_commits()
    deadline = time.monotonic() + (run_seconds or settings.DISPATCH_RUN_SECONDS)
    renderer, switch, token = Renderer(), Switch(), uuid.uuid4().hex
    sent, skip = 0, set()
    while time.monotonic() < deadline and switch.on():
        lease = StreamLease.take(token, skip)
        if lease is None:
            break
        stream = StreamRun(lease, renderer, switch, deadline)
        try:
            sent += stream.run()
        finally:
            lease.release()
        if stream.waiting:
            skip.add(lease.owner_id)  # its next item is due later: the minute tick comes back for it
    return sent, time.monotonic() >= deadline and switch.on()
