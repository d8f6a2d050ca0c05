"""The dispatcher: claim due messages, send them one by one through the channel backend within
the shared rate limit, record every outcome as it happens.

Correctness rests on the message rows, not on the task queue:
- a claim takes a batch with `FOR UPDATE SKIP LOCKED`, marks it `sending` under a lease token
  and counts the attempt: any number of workers, never the same message twice;
- just before a send the message is marked in flight (`send_started_at`) under the same token,
  and its outcome is written right after, so at most one message per worker is ever in doubt;
- a lease that expires (the worker died) puts untouched messages back in the queue; a message
  that was in flight goes back only if its channel deduplicates on the idempotency key, else it
  is recorded `unknown`, never resent blindly; one whose attempts are used up fails.
"""

import json
import logging
import random
import time
import uuid
import weakref
from collections import Counter, deque
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min
from django.utils import timezone

from audit.services import audit_record
from campaigns.channels.base import OutgoingMessage, SendError
from campaigns.channels.registry import backend_for
from campaigns.models import Campaign, CampaignKind, CampaignStatus, Message, MessageBatch, MessageStatus, MessageTemplate
from campaigns.ratelimit import ChannelPaused, acquire, rate_limit_of, tokens_per_call
from campaigns.rendering import Compiled, compile_parts, recipient_context, template_variables
from campaigns.unsubscribe import unsubscribe_headers, unsubscribe_url
from inboxerr.actors import Actor
from inboxerr.errors import Conflict
from inboxerr.metrics import counter_add, histogram_observe
from inboxerr.webhooks.events import WebhookEvent
from inboxerr.webhooks.services import event_emit
from subscribers.models import Subscriber

logger = logging.getLogger("inboxerr.dispatch")
# An outcome that is not a failure: the provider asked us to slow down (429 + Retry-After).
THROTTLED = "throttled"
TABLE = Message._meta.db_table


@dataclass
class Claimed:
    id: int
    uid: uuid.UUID
    campaign_id: uuid.UUID
    subscriber_id: int | None
    channel: str
    recipient: str
    variables: dict
    attempts: int
    # A batch item's own message (campaign messages take theirs from the campaign).
    batch_id: int | None = None
    template_id: int | None = None
    subject: str | None = None
    content: str | None = None
    sequence: int = 0


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Seed 004: base * 2^(attempt-1), capped, with full jitter on the upper half; a provider's
    Retry-After wins when it asks for longer."""
    base, cap = settings.DISPATCH_BACKOFF_BASE_SECONDS, settings.DISPATCH_BACKOFF_MAX_SECONDS
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = delay / 2 + random.uniform(0, delay / 2)
    return max(delay, min(retry_after or 0.0, settings.DISPATCH_RETRY_AFTER_MAX_SECONDS))


def running_campaigns() -> list:
    return list(Campaign.objects.filter(status=CampaignStatus.RUNNING).values_list("pk", flat=True))


# The claim in one statement (PostgreSQL): pick, lease and read the batch in one round trip.
_CLAIM_SQL = f"""
    UPDATE {TABLE} SET status = '{MessageStatus.SENDING}', lease_token = %s, send_started_at = NULL,
           leased_until = %s, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM {TABLE}
        WHERE status = '{MessageStatus.QUEUED}' AND campaign_id = ANY(%s)
          AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
        ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
    RETURNING id, uid, campaign_id, subscriber_id, channel, recipient, variables, attempts
"""


def claim(*, token: str, limit: int) -> list[Claimed]:
    campaigns = running_campaigns()
    if not campaigns:
        return []
    now = timezone.now()
    if connection.vendor == "postgresql":
        until = now + timedelta(seconds=settings.DISPATCH_LEASE_SECONDS)
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, [token, until, campaigns, now, limit])
            rows = cursor.fetchall()
        # Django reads jsonb as text on its connections; the ORM decodes it in the field.
        return sorted((Claimed(*row[:6], json.loads(row[6]) if isinstance(row[6], str) else row[6], row[7])
                       for row in rows), key=lambda message: message.id)
    with transaction.atomic():
        ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(status=MessageStatus.QUEUED, campaign_id__in=campaigns)
            .exclude(next_attempt_at__gt=now)
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        Message.objects.filter(pk__in=ids).update(
            status=MessageStatus.SENDING, lease_token=token, send_started_at=None,
            leased_until=now + timedelta(seconds=settings.DISPATCH_LEASE_SECONDS), attempts=F("attempts") + 1,
        )
        rows = Message.objects.filter(pk__in=ids).order_by("id").values_list(
            "id", "uid", "campaign_id", "subscriber_id", "channel", "recipient", "variables", "attempts"
        )
        return [Claimed(*row) for row in rows]


class Renderer:
    """Compiles each campaign's (or batch item template's) template once and renders per
    recipient from plain dicts."""

    def __init__(self) -> None:
        self.campaigns: dict = {}
        self.templates: dict = {}
        self.batch_owners: dict = {}
        self.uses_url = weakref.WeakKeyDictionary()  # compiled -> whether it shows unsubscribe_url

    def campaign(self, campaign_id) -> tuple[Campaign, Compiled]:
        if campaign_id not in self.campaigns:
            campaign = Campaign.objects.select_related("template").get(pk=campaign_id)
            template = campaign.template
            if template is not None:
                compiled = compile_parts(subject=campaign.subject or template.subject, body_text=template.body_text,
                                         body_html=template.body_html)
            else:
                compiled = compile_parts(subject=campaign.subject, body_text=campaign.message_content)
            self.campaigns[campaign_id] = (campaign, compiled)
        return self.campaigns[campaign_id]

    def needs_url(self, compiled: Compiled, channel: str) -> bool:
        """Every email carries the unsubscribe URL in its headers; an SMS only when its text
        uses it. Signing the URL is the costliest step of a render, so an SMS that does not
        show it does not pay for it."""
        if channel == "email":
            return True
        if compiled not in self.uses_url:
            self.uses_url[compiled] = "unsubscribe_url" in template_variables(compiled)
        return self.uses_url[compiled]

    def item(self, message: Claimed) -> tuple[int, Compiled]:
        """A batch item's owner and compiled message: its template (with its subject, if it gives
        one) compiled once per run, or its own content."""
        if message.batch_id not in self.batch_owners:
            self.batch_owners[message.batch_id] = MessageBatch.objects.values_list("owner_id", flat=True).get(
                pk=message.batch_id)
        owner_id = self.batch_owners[message.batch_id]
        if message.template_id is None:
            return owner_id, compile_parts(subject=message.subject or "", body_text=message.content or "")
        key = (message.template_id, message.subject)
        if key not in self.templates:
            template = MessageTemplate.objects.get(pk=message.template_id)
            self.templates[key] = compile_parts(subject=message.subject or template.subject,
                                                body_text=template.body_text, body_html=template.body_html)
        return owner_id, self.templates[key]

    def render(self, message: Claimed, subscriber: dict | None) -> OutgoingMessage:
        if message.campaign_id is None:
            owner_id, compiled = self.item(message)
        else:
            campaign, compiled = self.campaign(message.campaign_id)
            owner_id = campaign.owner_id
        url = unsubscribe_url(owner_id=owner_id, channel=message.channel, address=message.recipient) \
            if self.needs_url(compiled, message.channel) else ""
        context = recipient_context(
            email=(subscriber or {}).get("email", message.recipient if message.channel == "email" else ""),
            phone=(subscriber or {}).get("phone", message.recipient if message.channel == "sms" else ""),
            name=(subscriber or {}).get("name", ""),
            standard_fields=(subscriber or {}).get("standard_fields"),
            custom_fields=(subscriber or {}).get("custom_fields"),
            variables=message.variables,
            unsubscribe_url=url,
        )
        subject, text, html = compiled.render(context)
        headers = unsubscribe_headers(url) if message.channel == "email" else {}
        return OutgoingMessage(uid=str(message.uid), channel=message.channel, recipient=message.recipient,
                               subject=subject, body_text=text, body_html=html, headers=headers)


def _subscribers(batch: list[Claimed]) -> dict[int, dict]:
    ids = [m.subscriber_id for m in batch if m.subscriber_id]
    rows = Subscriber.objects.filter(pk__in=ids).values("id", "email", "phone", "name", "standard_fields", "custom_fields")
    return {row["id"]: row for row in rows}


# The two writes every send makes, as plain SQL: the ORM's per-call overhead was a third of a
# worker's time per message (bench/dispatch.py).
_MARK_SQL = (
    f"UPDATE {TABLE} SET send_started_at = %s, leased_until = %s "
    f"WHERE id = %s AND lease_token = %s AND status = '{MessageStatus.SENDING}'"
)
_SENT_SQL = (
    f"UPDATE {TABLE} SET status = '{MessageStatus.SENT}', lease_token = '', leased_until = NULL, "
    "next_attempt_at = NULL, sent_at = %s, provider_message_id = %s, segments = %s WHERE id = %s AND lease_token = %s"
)


def _mark_in_flight(message: Claimed, token: str) -> bool:
    """Still ours? Then mark it in flight and stretch its lease over one send."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.DISPATCH_SEND_TIMEOUT_SECONDS + 30)
    with connection.cursor() as cursor:
        cursor.execute(_MARK_SQL, [now, until, message.id, token])
        return cursor.rowcount == 1


def _record_sent(message: Claimed, token: str, *, provider_id: str, segments: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_SENT_SQL, [timezone.now(), provider_id[:200], segments, message.id, token])
        return cursor.rowcount == 1


def _record_sent_and_mark(sent: tuple, message: Claimed, token: str) -> tuple[bool, bool]:
    """Record the previous send and mark the next one in flight in one round trip (PostgreSQL)."""
    done, provider_id, segments = sent
    if connection.vendor != "postgresql":
        return _record_sent(done, token, provider_id=provider_id, segments=segments), _mark_in_flight(message, token)
    now = timezone.now()
    until = now + timedelta(seconds=settings.DISPATCH_SEND_TIMEOUT_SECONDS + 30)
    sql = f"WITH done AS ({_SENT_SQL} RETURNING 1), marked AS ({_MARK_SQL} RETURNING 1) " \
          "SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM marked)"
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, provider_id[:200], segments, done.id, token, now, until, message.id, token])
        recorded, marked = cursor.fetchone()
    return recorded == 1, marked == 1


def _record(message: Claimed, token: str, *, status: str, error: str = "", provider_id: str = "",
            next_attempt_at=None, segments: int = 0, refund_attempt: bool = False, reason: str = "") -> bool:
    fields = {"status": status, "lease_token": "", "leased_until": None, "next_attempt_at": next_attempt_at}
    if status != MessageStatus.SENT and (error or not refund_attempt):
        fields["last_error"] = error[:1000]  # a sent message keeps the error of its last failed try
    if refund_attempt:  # handed back without being tried (channel paused): not an attempt
        fields["attempts"] = F("attempts") - 1
    if status == MessageStatus.SENT:
        fields.update(sent_at=timezone.now(), provider_message_id=provider_id[:200], segments=segments)
    if status == MessageStatus.QUEUED:
        fields["send_started_at"] = None
    recorded = bool(Message.objects.filter(pk=message.id, lease_token=token).update(**fields))
    if recorded and status in (MessageStatus.FAILED, MessageStatus.UNKNOWN):
        counter_add("messages_failed", channel=message.channel, reason=reason or status)
    return recorded


def _failure_reason(error: SendError, message: Claimed) -> str:
    if error.permanent:
        return "permanent"
    if error.unknown:
        return "unknown_outcome"
    return "attempts_exhausted" if message.attempts >= settings.DISPATCH_MAX_ATTEMPTS else "transient"


def _outcome_of(error: SendError, message: Claimed, idempotent: bool) -> tuple[str, object]:
    if error.permanent:
        return MessageStatus.FAILED, None
    if error.unknown and not idempotent:
        return MessageStatus.UNKNOWN, None
    if message.attempts >= settings.DISPATCH_MAX_ATTEMPTS:
        return (MessageStatus.UNKNOWN if error.unknown else MessageStatus.FAILED), None
    return MessageStatus.QUEUED, timezone.now() + timedelta(seconds=backoff_seconds(message.attempts, error.retry_after))


# A channel that deduplicates on the idempotency key marks its messages in flight a group at a
# time and records their sends set-based: an in-flight mark changes nothing the sweeper does for
# such a channel (an expired lease goes back to the queue either way, and a repeat is dropped by
# the provider), so a round trip per message would buy nothing.
_MARK_GROUP_SQL = (
    f"UPDATE {TABLE} SET send_started_at = %s, leased_until = %s "
    f"WHERE id = ANY(%s) AND lease_token = %s AND status = '{MessageStatus.SENDING}' RETURNING id"
)
_SENT_GROUP_SQL = (
    f"UPDATE {TABLE} AS m SET status = '{MessageStatus.SENT}', lease_token = '', leased_until = NULL, "
    "next_attempt_at = NULL, sent_at = v.at, provider_message_id = v.pid, segments = v.seg "
    "FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::timestamptz[]) AS v(id, pid, seg, at) "
    "WHERE m.id = v.id AND m.lease_token = %s RETURNING m.campaign_id"
)
# How long a group's in-flight mark is trusted before what is left of the group is marked again:
# the mark leases DISPATCH_SEND_TIMEOUT_SECONDS + 30 s, so a send started within this ends inside it.
GROUP_MARK_SECONDS = 20.0
# Recorded sends are written at least this often (the progress pages and a crash's resends).
GROUP_FLUSH_SECONDS = 1.0


class ChannelRun:
    """Sends one channel's share of a claimed batch through one open backend.

    Per message: take a rate-limit token, mark it in flight (still ours?), render, send, record.
    On a channel with no rate limit a successful send is recorded together with marking the next
    message in flight (one round trip instead of two); with a limit the next step may sleep for
    a token, so each outcome is written at once and the window in doubt stays one send long.

    On an idempotent channel (unordered) the group is marked in flight at once, re-marked every
    GROUP_MARK_SECONDS, and its sends are recorded in one statement at least once a second;
    failures are still recorded one by one, at once."""

    def __init__(self, channel: str, token: str, renderer: Renderer, subscribers: dict, outcomes: Counter, *,
                 ordered: bool = False, halt=None, progress=None, gate=None):
        self.channel, self.token, self.renderer = channel, token, renderer
        self.progress = progress  # called with the outcomes after each send (CounterFlush)
        self.gate = gate  # gate(campaign_id) false: the campaign was paused or cancelled (CampaignGate)
        self.subscribers, self.outcomes = subscribers, outcomes
        self.defer = rate_limit_of(channel) is None
        self.sent: tuple | None = None  # (message, provider id, segments) not yet recorded
        self.allowance = 0
        # Ordered (the batch publisher): a message that will be retried holds back the ones after
        # it, which go back to the queue untried; `halt()` true stops the run before the next send.
        self.ordered, self.halt, self.held = ordered, halt, False
        self.done: list[tuple] = []  # grouped: (id, provider id, segments, sent at) not yet recorded
        self.flushed_at = time.monotonic()

    def run(self, messages: list[Claimed]) -> None:
        backend = None
        try:
            backend = backend_for(self.channel)
            backend.open()
        except Exception as exc:  # noqa: BLE001 - misconfiguration or a provider that is down
            error = self._as_send_error(exc, f"cannot open the {self.channel} channel")
            for index, message in enumerate(messages):
                self._fail(message, error, getattr(backend, "idempotent", False))
                if self.held:
                    self._hand_back(messages[index + 1:], "", wait_seconds=0)
                    break
            return
        if backend.idempotent and not self.ordered and connection.vendor == "postgresql":
            try:
                self._run_grouped(messages, backend)
            finally:
                backend.close()
            return
        stopped: list[Claimed] = []
        try:
            for index, message in enumerate(messages):
                if self.gate is not None and not self.gate(message.campaign_id):
                    stopped.append(message)
                    continue
                if self.halt is not None and self.halt():
                    self._flush()
                    self._hand_back(messages[index:], "", wait_seconds=0)
                    break
                try:
                    self._take_token(remaining=len(messages) - index)
                except ChannelPaused as exc:
                    self._flush()
                    self._hand_back(messages[index:], str(exc))
                    break
                self._send_one(message, backend)
                if self.progress is not None:
                    self.progress(self.outcomes)
                if self.held:
                    self._hand_back(messages[index + 1:], "", wait_seconds=0)
                    break
        finally:
            self._flush()
            self._hand_back(stopped, "", wait_seconds=0)
            backend.close()

    def _run_grouped(self, messages: list[Claimed], backend) -> None:
        stopped: list[Claimed] = []
        ours: set = set()
        marked_at = float("-inf")
        try:
            for index, message in enumerate(messages):
                if self.gate is not None and not self.gate(message.campaign_id):
                    stopped.append(message)
                    continue
                try:
                    self._take_token(remaining=len(messages) - index)
                except ChannelPaused as exc:
                    self._flush_group()
                    self._hand_back(messages[index:], str(exc))
                    break
                if time.monotonic() - marked_at > GROUP_MARK_SECONDS:
                    self._flush_group()
                    ours = self._mark_group(messages[index:])
                    marked_at = time.monotonic()
                if message.id not in ours:
                    continue  # our lease expired: the message went back to the queue
                delivered = self._deliver(message, backend)
                if delivered is not None:
                    self.done.append((message.id, *delivered, timezone.now()))
                if time.monotonic() - self.flushed_at >= GROUP_FLUSH_SECONDS:
                    self._flush_group()
                if self.progress is not None:
                    self.progress(self.outcomes)
        finally:
            self._flush_group()
            self._hand_back(stopped, "", wait_seconds=0)

    def _mark_group(self, messages: list[Claimed]) -> set:
        """Mark the rest of the group in flight and stretch its lease; the ids still ours."""
        now = timezone.now()
        until = now + timedelta(seconds=settings.DISPATCH_SEND_TIMEOUT_SECONDS + 30)
        with connection.cursor() as cursor:
            cursor.execute(_MARK_GROUP_SQL, [now, until, [m.id for m in messages], self.token])
            return {row[0] for row in cursor.fetchall()}

    def _flush_group(self) -> None:
        if self.done:
            ids, provider_ids, segments, sent_at = zip(*self.done)
            with connection.cursor() as cursor:
                cursor.execute(_SENT_GROUP_SQL, [list(ids), [p[:200] for p in provider_ids], list(segments),
                                                 list(sent_at), self.token])
                for (campaign_id,) in cursor.fetchall():
                    self.outcomes[(campaign_id, MessageStatus.SENT)] += 1
            self.done = []
        self.flushed_at = time.monotonic()

    def _take_token(self, remaining: int) -> None:
        if self.allowance == 0:
            self.allowance = min(tokens_per_call(self.channel), remaining)
            acquire(self.channel, self.allowance)
        self.allowance -= 1

    def _send_one(self, message: Claimed, backend) -> None:
        if not self._mark(message):
            self.held = self.ordered  # our lease expired: in order, nothing after it goes first
            return  # the message went back to the queue
        delivered = self._deliver(message, backend)
        if delivered is not None:
            self.sent = (message, *delivered)
            if not self.defer:
                self._flush()

    def _deliver(self, message: Claimed, backend) -> tuple[str, int] | None:
        """Render and send one message marked in flight: (provider id, segments) when sent;
        a failure is recorded here."""
        try:
            outgoing = self.renderer.render(message, self.subscribers.get(message.subscriber_id))
        except Exception as exc:  # a template or data problem: retrying cannot fix it
            logger.exception("Rendering message %s failed", message.id)
            if _record(message, self.token, status=MessageStatus.FAILED, error=f"cannot render the message: {exc}",
                       reason="render_error"):
                self.outcomes[(message.campaign_id, MessageStatus.FAILED)] += 1
            return None
        try:
            provider_id = backend.send(outgoing)
        except Exception as exc:  # noqa: BLE001 - a backend bug must not take the batch down
            self._fail(message, self._as_send_error(exc, f"unexpected error in the {self.channel} backend"),
                       backend.idempotent)
            return None
        return provider_id or "", getattr(outgoing, "segments", 0)

    def _mark(self, message: Claimed) -> bool:
        if self.sent is None:
            return _mark_in_flight(message, self.token)
        recorded, marked = _record_sent_and_mark(self.sent, message, self.token)
        if recorded:
            self.outcomes[(self.sent[0].campaign_id, MessageStatus.SENT)] += 1
        self.sent = None
        return marked

    def _flush(self) -> None:
        if self.sent is not None:
            message, provider_id, segments = self.sent
            if _record_sent(message, self.token, provider_id=provider_id, segments=segments):
                self.outcomes[(message.campaign_id, MessageStatus.SENT)] += 1
        self.sent = None

    def _fail(self, message: Claimed, error: SendError, idempotent: bool) -> None:
        status, when = _outcome_of(error, message, idempotent)
        if _record(message, self.token, status=status, error=error.message, next_attempt_at=when,
                   reason=_failure_reason(error, message)):
            throttled = status == MessageStatus.QUEUED and error.retry_after is not None
            self.outcomes[(message.campaign_id, THROTTLED if throttled else status)] += 1
        self.held = self.ordered and status == MessageStatus.QUEUED

    def _hand_back(self, messages: list[Claimed], why: str, wait_seconds: float = 5) -> None:
        """Back to the queue untried (the channel is paused, the outbox stopped, or an earlier
        item waits for its retry: why ''), their attempt refunded."""
        when = timezone.now() + timedelta(seconds=wait_seconds) if wait_seconds else None
        for message in messages:
            _record(message, self.token, status=MessageStatus.QUEUED, error=why, next_attempt_at=when,
                    refund_attempt=True)

    @staticmethod
    def _as_send_error(exc: Exception, what: str) -> SendError:
        if isinstance(exc, SendError):
            return exc
        logger.exception("%s", what)
        return SendError(f"{what}: {exc}")


def send_batch(batch: list[Claimed], token: str, renderer: Renderer, progress=None, gate=None) -> Counter:
    """Send a claimed batch; returns counts of outcomes by (campaign, status)."""
    outcomes: Counter = Counter()
    subscribers = _subscribers(batch)
    by_channel: dict[str, list[Claimed]] = {}
    for message in batch:
        by_channel.setdefault(message.channel, []).append(message)
    for channel, messages in by_channel.items():
        ChannelRun(channel, token, renderer, subscribers, outcomes, progress=progress, gate=gate).run(messages)
    return outcomes


_COUNTER_FIELD = {
    MessageStatus.SENT: "sent_count",
    MessageStatus.FAILED: "failed_count",
    MessageStatus.UNKNOWN: "unknown_count",
}


def apply_outcomes(outcomes: Counter) -> None:
    """Add a batch's final outcomes to the campaign counters (retries are not final) and to the
    sent counter of /metrics."""
    channels = dict(Campaign.objects.filter(pk__in={key[0] for key in outcomes}).values_list("pk", "channel"))
    sent: Counter = Counter()
    for (campaign_id, status), count in outcomes.items():
        if status == MessageStatus.SENT:
            sent[channels.get(campaign_id, "")] += count
    for channel, count in sent.items():
        counter_add("messages_sent", count, channel=channel)
    per_campaign: dict = {}
    for (campaign_id, status), count in outcomes.items():
        field = _COUNTER_FIELD.get(status)
        if field:
            per_campaign.setdefault(campaign_id, {})[field] = F(field) + count
    # A completed campaign was recounted exactly when it completed, and it completes only once none
    # of its messages is queued or in flight: outcomes that reach its counters later (another
    # worker's flush) are already in that count.
    for campaign_id, updates in per_campaign.items():
        Campaign.objects.filter(pk=campaign_id).exclude(status=CampaignStatus.COMPLETED).update(**updates)


class CampaignGate:
    """Whether a claimed message's campaign is still running, re-read at most once a second: a
    pause or a cancel stops every worker's sends within about a second, not after the batches
    they already claimed (which, under a slow rate limit, take minutes). What a worker holds for
    a stopped campaign goes back to the queue untried."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.running: set = set()
        self.at = float("-inf")

    def __call__(self, campaign_id) -> bool:
        age = time.monotonic() - self.at
        # A miss is re-read sooner: the campaign may have been resumed since the last look.
        if age >= self.interval or (campaign_id not in self.running and age >= self.interval / 10):
            self.running = set(running_campaigns())
            self.at = time.monotonic()
        return campaign_id in self.running


class CounterFlush:
    """Applies a claimed batch's outcomes to the campaign counters as they come, at most once a
    second and each outcome once: under a slow rate limit one claim takes many seconds, and the
    counters (what every progress page and the tracker read) must not stand still meanwhile."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.applied: Counter = Counter()
        self.at = time.monotonic()

    def __call__(self, outcomes: Counter, *, final: bool = False) -> None:
        if not final and time.monotonic() - self.at < self.interval:
            return
        new = outcomes - self.applied  # outcomes only grow, so this is what is not applied yet
        if new:
            apply_outcomes(new)
            self.applied.update(new)
        self.at = time.monotonic()


def finish_campaigns() -> list:
    """Complete running campaigns with nothing left to send; recount their counters exactly."""
    done = []
    for campaign_id in running_campaigns():
        if Message.objects.filter(campaign_id=campaign_id, status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]).exists():
            continue
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
            # Resumed before its fan-out ran: no messages yet because none are written yet.
            if campaign.status != CampaignStatus.RUNNING or campaign.started_at is None:
                continue
            recount(campaign)
            campaign.status, campaign.finished_at = CampaignStatus.COMPLETED, timezone.now()
            campaign.save(update_fields=["status", "finished_at", "updated_at"])
            audit_record(
                actor=Actor.system(), action="update", entity_type="campaign", entity_id=campaign.pk,
                owner_id=campaign.owner_id,
                user_action=f"Campaign '{campaign.name}' completed: {campaign.sent_count:,} sent, "
                f"{campaign.failed_count:,} failed, {campaign.skipped_count:,} skipped",
                after={"status": campaign.status},
            )
            event = WebhookEvent.BULK_EMAIL_COMPLETED if campaign.kind == CampaignKind.BULK_EMAIL else WebhookEvent.CAMPAIGN_COMPLETED
            event_emit(event=event, owner_id=campaign.owner_id, payload={
                **campaign.event_payload(), "status": campaign.status, "sent": campaign.sent_count,
                "failed": campaign.failed_count, "skipped": campaign.skipped_count, "unknown": campaign.unknown_count,
            })
            done.append(campaign_id)
    return done


def recount(campaign: Campaign) -> None:
    counts = dict(
        Message.objects.filter(campaign=campaign).values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    campaign.total_count = sum(counts.values())
    campaign.sent_count = counts.get(MessageStatus.SENT, 0)
    campaign.failed_count = counts.get(MessageStatus.FAILED, 0)
    campaign.skipped_count = counts.get(MessageStatus.SKIPPED, 0)
    campaign.unknown_count = counts.get(MessageStatus.UNKNOWN, 0)
    campaign.cancelled_count = counts.get(MessageStatus.CANCELLED, 0)
    Campaign.objects.filter(pk=campaign.pk).update(
        total_count=campaign.total_count, sent_count=campaign.sent_count, failed_count=campaign.failed_count,
        skipped_count=campaign.skipped_count, unknown_count=campaign.unknown_count,
        cancelled_count=campaign.cancelled_count,
    )


def requeue_expired_leases(*, batch_id: int | None = None) -> dict:
    """The sweeper: messages whose worker went silent (all of them, or one batch's). Untouched
    ones go back to the queue; one that was in flight goes back only on an idempotent channel,
    else becomes `unknown`; one whose attempts are used up fails ("worker lost")."""
    from campaigns.channels.registry import is_idempotent

    now = timezone.now()
    result = Counter()
    touched = set()
    scope = Message.objects.filter(batch_id=batch_id) if batch_id else Message.objects.all()
    with transaction.atomic():
        expired = list(
            scope.select_for_update(skip_locked=True)
            .filter(status=MessageStatus.SENDING, leased_until__lt=now)
            .values_list("id", "campaign_id", "channel", "attempts", "send_started_at")[:10_000]
        )
        for message_id, campaign_id, channel, attempts, started in expired:
            if started and not is_idempotent(channel):
                status, error = MessageStatus.UNKNOWN, "worker lost during the send: outcome unknown"
            elif attempts >= settings.DISPATCH_MAX_ATTEMPTS:
                status, error = MessageStatus.FAILED, f"worker lost {attempts} times"
            else:
                status, error = MessageStatus.QUEUED, "worker lost; requeued"
            Message.objects.filter(pk=message_id).update(
                status=status, last_error=error, lease_token="", leased_until=None, send_started_at=None
            )
            if status != MessageStatus.QUEUED:
                counter_add("messages_failed", channel=channel, reason="worker_lost")
            result[status] += 1
            if campaign_id is not None:  # a batch's counters are recounted when it finishes
                touched.add(campaign_id)
        for campaign_id in touched:
            recount(Campaign.objects.get(pk=campaign_id))
    return dict(result)


def has_due_work() -> bool:
    campaigns = running_campaigns()
    return bool(campaigns) and Message.objects.filter(
        status=MessageStatus.QUEUED, campaign_id__in=campaigns
    ).exclude(next_attempt_at__gt=timezone.now()).exists()


class FailureWatch:
    """The last DISPATCH_PAUSE_WINDOW send outcomes per campaign seen by this worker (a retry
    scheduled after a transient error counts as a failed send); a campaign whose failure share
    passes DISPATCH_PAUSE_FAILURE_RATE is paused, with the reason."""

    def __init__(self) -> None:
        self.windows: dict = {}

    def observe(self, outcomes: Counter) -> None:
        size, limit = settings.DISPATCH_PAUSE_WINDOW, settings.DISPATCH_PAUSE_FAILURE_RATE
        for (campaign_id, status), count in outcomes.items():
            if status == THROTTLED:
                continue
            window = self.windows.setdefault(campaign_id, deque(maxlen=size))
            window.extend([status != MessageStatus.SENT] * count)
        for campaign_id, window in self.windows.items():
            if len(window) == window.maxlen and sum(window) / len(window) > limit:
                self._pause(campaign_id, sum(window), len(window))
                window.clear()

    @staticmethod
    def _pause(campaign_id, failed: int, seen: int) -> None:
        from campaigns.services import campaign_pause

        campaign = Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.RUNNING).first()
        if campaign is None:
            return
        reason = f"paused automatically: {failed} of the last {seen} messages failed"
        try:
            campaign_pause(actor=Actor.system(), campaign=campaign, reason=reason)
        except Conflict:
            pass  # paused or finished meanwhile
        logger.warning("Campaign %s %s", campaign_id, reason)


def _fast_commits() -> None:
    """Each send writes two small commits (in flight, outcome). Waiting for each WAL flush would
    cap a worker near 500 sends/s on this hardware; without the wait, a worker crash still loses
    nothing (PostgreSQL has the commit), and only a crash of PostgreSQL itself can lose the last
    fraction of a second of outcomes (wal_writer_delay), whose messages may then be sent again."""
    if connection.vendor == "postgresql" and settings.DISPATCH_ASYNC_COMMIT:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")


def dispatch(*, run_seconds: float | None = None, batch_size: int | None = None) -> int:
    """One dispatcher run: claim and send until nothing is due or the run time is up."""
    _fast_commits()
    deadline = time.monotonic() + (run_seconds or settings.DISPATCH_RUN_SECONDS)
    renderer, sent, watch, gate = Renderer(), 0, FailureWatch(), CampaignGate()
    while time.monotonic() < deadline:
        loop_started = time.monotonic()
        token = uuid.uuid4().hex
        batch = claim(token=token, limit=batch_size or settings.DISPATCH_BATCH_SIZE)
        if not batch:
            # Retries waiting for their backoff: wait for the first if it falls in this run.
            due = Message.objects.filter(
                status=MessageStatus.QUEUED, campaign_id__in=running_campaigns()
            ).aggregate(first=Min("next_attempt_at"))["first"]
            wait = (due - timezone.now()).total_seconds() if due else None
            if wait is None or time.monotonic() + wait > deadline:
                break
            time.sleep(min(max(wait, 0.05), 1.0))
            continue
        flush = CounterFlush()
        outcomes = send_batch(batch, token, renderer, progress=flush, gate=gate)
        flush(outcomes, final=True)
        watch.observe(outcomes)
        histogram_observe("dispatcher_loop_duration_seconds", time.monotonic() - loop_started)
        sent += sum(n for (_, status), n in outcomes.items() if status == MessageStatus.SENT)
    finish_campaigns()
    return sent

