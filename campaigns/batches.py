"""The batch API of seed 003: ingest a batch of message requests, retry a failed batch, and the
outbox switch. The ordered publisher that sends the batches is campaigns/outbox.py.

A batch is a MessageBatch; its items are Message rows (batch set, campaign NULL) with their
`sequence` as item_sequence and their `uid` as item_id. Ingest checks every item first and
stores nothing if any is wrong; then one transaction takes the owner's next batch_sequence
(locking the owner's BatchStream row, so sequence order is commit order) and writes the items
set-based (COPY on PostgreSQL).
"""

import json
import re
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from audit.services import audit_record
from campaigns.models import (
    BatchStatus, BatchStream, Message, MessageBatch, MessageStatus, MessageTemplate, OutboxSwitch,
)
from campaigns.rendering import TemplateError, compile_parts, missing_variables, template_variables
from inboxerr.actors import Actor
from inboxerr.errors import Conflict, InvalidInput
from subscribers.models import Channel, Suppression
from subscribers.normalize import RecordError, normalize_email, normalize_phone

ITEM_FIELDS = ("request_id", "vendor_name", "channel", "recipient", "template_id", "variables", "content", "subject")
# Channel.values builds a new list on every access: read once, not once per item.
CHANNELS = frozenset(Channel.values)
# vendor_counts key of items that name no vendor.
NO_VENDOR = "unspecified"
# A 400 lists this many bad items (and says how many there were).
ERRORS_LISTED = 100
# The longest item content, as a campaign's message_content (an SMS this long is ~650 segments;
# the stored segment count is a small integer).
CONTENT_MAX_CHARS = 100_000
# Text PostgreSQL cannot store (NUL) or UTF-8 cannot encode (an unpaired surrogate, which a JSON
# escape such as \ud800 gives): refused per item rather than failing the COPY with a 500.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_COPY_COLUMNS = (
    "uid", "batch_id", "channel", "recipient", "variables", "status", "skip_reason", "attempts", "last_error",
    "provider_message_id", "lease_token", "sequence", "segments", "created_at", "request_id", "vendor_name",
    "template_id", "subject", "content",
)


class ItemError(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class CleanItem:
    request_id: str
    vendor_name: str | None
    channel: str
    recipient: str
    template_id: int | None
    variables: dict
    content: str | None
    subject: str | None


class ItemChecker:
    """Checks one item at a time against the owner's templates; a content template is compiled
    once however many items repeat it."""

    def __init__(self, owner, items: list):
        ids = (item.get("template_id") for item in items if isinstance(item, dict))
        ids = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}  # a list or object is not hashable
        self.templates = {t.pk: t for t in MessageTemplate.objects.filter(owner=owner, pk__in=ids)}
        self.required: dict = {}
        self.request_ids: dict[str, int] = {}

    def clean(self, index: int, item: object) -> CleanItem:
        if not isinstance(item, dict):
            raise ItemError("", "each item must be a JSON object")
        unknown = sorted(set(item) - set(ITEM_FIELDS))
        if unknown:
            raise ItemError(unknown[0], f"unknown field '{unknown[0]}' (allowed: {', '.join(ITEM_FIELDS)})")
        _check_storable(item)
        request_id = self._request_id(index, item.get("request_id"))
        vendor = item.get("vendor_name")
        if vendor is not None and not isinstance(vendor, str):
            raise ItemError("vendor_name", "must be a string")
        vendor = (vendor or "").strip() or None
        if vendor and len(vendor) > 100:
            raise ItemError("vendor_name", "is longer than 100 characters")
        channel = item.get("channel")
        if not isinstance(channel, str) or channel not in CHANNELS:
            raise ItemError("channel", f"must be one of: {', '.join(Channel.values)}")
        recipient = self._recipient(channel, item.get("recipient"))
        variables = item.get("variables", {})
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            raise ItemError("variables", "must be a JSON object of merge field values")
        template_id, content, subject = self._message(channel, item)
        missing = missing_variables(self._required(template_id, content, subject), set(variables))
        if missing:
            where = "template_id" if template_id else "content"
            raise ItemError("variables", f"missing merge field(s) the {where} uses: {', '.join(missing)}")
        return CleanItem(request_id, vendor, channel, recipient, template_id, variables, content, subject)

    def _request_id(self, index: int, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ItemError("request_id", "is required (a string or an integer)")
        request_id = str(value).strip()
        if not request_id:
            raise ItemError("request_id", "is required")
        if len(request_id) > 200:
            raise ItemError("request_id", "is longer than 200 characters")
        first = self.request_ids.setdefault(request_id, index)
        if first != index:
            raise ItemError("request_id", f"'{request_id}' repeats item {first}")
        return request_id

    @staticmethod
    def _recipient(channel: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ItemError("recipient", f"is required (an {'email address' if channel == Channel.EMAIL else 'phone number'})")
        try:
            return normalize_email(value) if channel == Channel.EMAIL else normalize_phone(value)
        except RecordError as exc:
            raise ItemError("recipient", exc.message) from None

    def _message(self, channel: str, item: dict) -> tuple[int | None, str | None, str | None]:
        template_id, content, subject = item.get("template_id"), item.get("content"), item.get("subject")
        if content is not None and not isinstance(content, str):
            raise ItemError("content", "must be a string")
        if subject is not None and not isinstance(subject, str):
            raise ItemError("subject", "must be a string")
        content = content if content and content.strip() else None
        if content and len(content) > CONTENT_MAX_CHARS:
            raise ItemError("content", f"is longer than {CONTENT_MAX_CHARS:,} characters")
        subject = " ".join(subject.split()) if subject and subject.strip() else None
        if (template_id is None) == (content is None):
            raise ItemError("template_id", "give either template_id (with variables) or content, not both")
        if channel == Channel.SMS and subject:
            raise ItemError("subject", "SMS messages have no subject")
        if subject and len(subject) > 500:
            raise ItemError("subject", "is longer than 500 characters")
        if template_id is not None:
            if isinstance(template_id, bool) or not isinstance(template_id, int):
                raise ItemError("template_id", "must be an integer")
            template = self.templates.get(template_id)
            if template is None:
                raise ItemError("template_id", f"template {template_id} not found")
            if not template.is_active:
                raise ItemError("template_id", f"template {template_id} is not active")
            if template.channel != channel:
                raise ItemError("template_id", f"template {template_id} is for {template.channel}, the item is {channel}")
            if channel == Channel.EMAIL and not (subject or template.subject):
                raise ItemError("subject", f"template {template_id} has no subject: give one")
        elif channel == Channel.EMAIL and not subject:
            raise ItemError("subject", "an email item with content needs a subject")
        return template_id, content, subject

    def _required(self, template_id: int | None, content: str | None, subject: str | None) -> dict[str, bool]:
        if template_id is None and "{" not in content and "{" not in (subject or ""):
            # Plain text: every tag of Django's template syntax starts with "{", so it has no merge
            # fields and cannot fail to compile. Pre-rendered content differs in every item:
            # compiling (and caching) each one cost ~2 s per 100,000 items (bench/batches.py).
            return {}
        key = (template_id, content, subject)
        if key not in self.required:
            if template_id is not None:
                template = self.templates[template_id]
                parts = {"subject": subject or template.subject, "body_text": template.body_text,
                         "body_html": template.body_html}
            else:
                parts = {"subject": subject or "", "body_text": content}
            try:
                self.required[key] = template_variables(compile_parts(**parts))
            except TemplateError as exc:
                self.required[key] = exc
        found = self.required[key]
        if isinstance(found, TemplateError):
            raise ItemError("subject" if found.part == "subject" or not content else "content", found.message)
        return found


def _check_storable(item: dict) -> None:
    for field, value in item.items():
        stack = [value]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                if _UNSTORABLE.search(value):
                    raise ItemError(field, "contains a NUL character or an unpaired surrogate, which cannot be stored")
            elif isinstance(value, dict):
                stack.extend(value)
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)


def batch_items_clean(*, owner, items: object) -> list[CleanItem]:
    """Every item checked; InvalidInput naming each bad item by index if any is wrong."""
    if not isinstance(items, list):
        raise InvalidInput("items: send a JSON array of items, or an object with an 'items' array", field="items")
    if not items:
        raise InvalidInput("items: a batch needs at least one item", field="items")
    if len(items) > settings.BATCH_MAX_ITEMS:
        raise InvalidInput(f"items: at most {settings.BATCH_MAX_ITEMS:,} items per batch, got {len(items):,}", field="items")
    checker = ItemChecker(owner, items)
    clean, errors = [], []
    for index, item in enumerate(items):
        try:
            clean.append(checker.clean(index, item))
        except ItemError as exc:
            errors.append({"index": index, "field": exc.field, "message": exc.message})
    if errors:
        first = errors[0]
        where = f"items[{first['index']}]" + (f".{first['field']}" if first["field"] else "")
        raise InvalidInput(
            f"{len(errors):,} of {len(items):,} items are invalid, nothing was stored; {where}: {first['message']}",
            field="items", extra={"invalid_items": len(errors), "errors": errors[:ERRORS_LISTED]},
        )
    return clean


def batch_ingest(*, actor: Actor, owner, items: object) -> MessageBatch:
    """Store a batch and its items in one transaction (seed 003's writer): nothing is sent yet;
    the publisher is told once the transaction commits. Suppressed recipients are stored as
    skipped items: they never receive anything."""
    started = time.perf_counter()
    clean = batch_items_clean(owner=owner, items=items)
    vendor_counts = dict(Counter(item.vendor_name or NO_VENDOR for item in clean))
    suppressed = _suppressed(owner, clean)
    with transaction.atomic():
        BatchStream.objects.get_or_create(owner=owner)
        stream = BatchStream.objects.select_for_update().get(owner=owner)
        stream.last_sequence += 1
        stream.save(update_fields=["last_sequence"])
        batch = MessageBatch.objects.create(
            batch_id=secrets.token_hex(8), owner=owner, sequence=stream.last_sequence, total_items=len(clean),
            vendor_counts=vendor_counts, skipped_count=sum(1 for item in clean if (item.channel, item.recipient) in suppressed),
        )
        _write_items(batch, clean, suppressed)
        batch.processing_time_ms = round((time.perf_counter() - started) * 1000, 2)
        MessageBatch.objects.filter(pk=batch.pk).update(processing_time_ms=batch.processing_time_ms)
        audit_record(
            actor=actor, action="create", entity_type="message_batch", entity_id=batch.batch_id, owner_id=owner.pk,
            user_action=f"Batch {batch.batch_id} (#{batch.sequence}) stored with {batch.total_items:,} items"
            + (f", {batch.skipped_count:,} suppressed" if batch.skipped_count else ""),
            after={"batch_sequence": batch.sequence, "total_items": batch.total_items, "vendor_counts": vendor_counts},
        )
        from campaigns.outbox import outbox_kick

        transaction.on_commit(outbox_kick)
    return batch


def _suppressed(owner, items: list[CleanItem]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for channel in {item.channel for item in items}:
        if not Suppression.objects.filter(owner=owner, channel=channel).exists():
            continue  # the usual case: nothing to look up
        addresses = list({item.recipient for item in items if item.channel == channel})
        if connection.vendor == "postgresql":
            # One array parameter: 10 queries of 10,000 IN placeholders each cost ~1.7 s per
            # 100,000 items (building and parsing the placeholders), this ~0.3 s (bench/batches.py).
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT address FROM {Suppression._meta.db_table} WHERE owner_id = %s AND channel = %s "
                    "AND address = ANY(%s)", [owner.pk, channel, addresses],
                )
                found.update((channel, address) for (address,) in cursor.fetchall())
            continue
        for start in range(0, len(addresses), 10_000):
            found.update(
                (channel, address) for address in Suppression.objects.filter(
                    owner=owner, channel=channel, address__in=addresses[start:start + 10_000]
                ).values_list("address", flat=True)
            )
    return found


def _write_items(batch: MessageBatch, items: list[CleanItem], suppressed: set) -> None:
    now = timezone.now()

    def status_of(item: CleanItem) -> tuple[str, str]:
        if (item.channel, item.recipient) in suppressed:
            return MessageStatus.SKIPPED, "suppressed"
        return MessageStatus.QUEUED, ""

    if connection.vendor == "postgresql":
        columns = ", ".join(_COPY_COLUMNS)
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {Message._meta.db_table} ({columns}) FROM STDIN"
        ) as copy:
            for sequence, item in enumerate(items, start=1):
                status, skip_reason = status_of(item)
                copy.write_row((
                    uuid.uuid4(), batch.pk, item.channel, item.recipient, json.dumps(item.variables), status, skip_reason,
                    0, "", "", "", sequence, 0, now, item.request_id, item.vendor_name, item.template_id, item.subject,
                    item.content,
                ))
        return
    rows = []
    for sequence, item in enumerate(items, start=1):
        status, skip_reason = status_of(item)
        rows.append(Message(
            batch=batch, channel=item.channel, recipient=item.recipient, variables=item.variables, status=status,
            skip_reason=skip_reason, sequence=sequence, request_id=item.request_id, vendor_name=item.vendor_name,
            template_id=item.template_id, subject=item.subject, content=item.content,
        ))
    Message.objects.bulk_create(rows, batch_size=2000)


# --- After ingest: status, retry ----------------------------------------------------------------

# What the batch API calls each message status (seed 003's item lifecycle, plus the two that a
# campaign message also has: in flight, and never sent because the address is suppressed).
ITEM_STATUS = {
    MessageStatus.QUEUED: "pending",
    MessageStatus.SENDING: "sending",
    MessageStatus.SENT: "sent",
    MessageStatus.FAILED: "failed",
    MessageStatus.UNKNOWN: "failed",  # the provider may have it: sent again only by a retry
    MessageStatus.SKIPPED: "skipped",
    MessageStatus.CANCELLED: "failed",
}
ITEM_STATUSES = ("pending", "sending", "sent", "failed", "skipped")
OUTBOX_STATES = ("running", "stopped")
FAILED_STATUSES = (MessageStatus.FAILED, MessageStatus.UNKNOWN, MessageStatus.CANCELLED)


def batch_item_counts(batch: MessageBatch) -> dict[str, int]:
    counts = Counter({name: 0 for name in ("pending", "sending", "sent", "failed", "skipped")})
    rows = Message.objects.filter(batch=batch).values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    for status, n in rows:
        counts[ITEM_STATUS[status]] += n
    return dict(counts)


@transaction.atomic
def batch_retry(*, actor: Actor, batch: MessageBatch) -> int:
    """Requeue only a failed batch's failed items; the batch is pending again and, once the batch
    its stream is sending now (if any) is done, goes next (its place in the sequence). Returns how
    many items were requeued."""
    batch = MessageBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != BatchStatus.FAILED:
        raise Conflict(f"Batch {batch.batch_id} is {batch.status}: only a failed batch can be retried")
    requeued = Message.objects.filter(batch=batch, status__in=FAILED_STATUSES).update(
        status=MessageStatus.QUEUED, attempts=0, next_attempt_at=None, lease_token="", leased_until=None,
        send_started_at=None,
    )
    MessageBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.PENDING, status_reason="", failed_count=0, finished_at=None, updated_at=timezone.now(),
    )
    audit_record(
        actor=actor, action="update", entity_type="message_batch", entity_id=batch.batch_id, owner_id=batch.owner_id,
        user_action=f"Batch {batch.batch_id} retried: {requeued:,} failed items requeued",
        before={"status": batch.status}, after={"status": BatchStatus.PENDING, "requeued": requeued},
    )
    from campaigns.outbox import outbox_kick

    transaction.on_commit(outbox_kick)
    return requeued


# --- The outbox switch ----------------------------------------------------------------------------


def outbox_switch() -> OutboxSwitch:
    switch, _ = OutboxSwitch.objects.get_or_create(pk=1, defaults={"enabled": settings.ENABLE_OUTBOX_PROCESSOR})
    return switch


def outbox_enabled() -> bool:
    return outbox_switch().enabled


@transaction.atomic
def outbox_set(*, actor: Actor, enabled: bool) -> OutboxSwitch:
    """Start or stop the publisher for everyone: running publishers read the switch before every
    item (at most OUTBOX_POLL_INTERVAL_SECONDS old) and stop, leaving the rest pending."""
    switch = outbox_switch()
    switch = OutboxSwitch.objects.select_for_update().get(pk=switch.pk)
    before = switch.enabled
    switch.enabled, switch.changed_at = enabled, timezone.now()
    switch.changed_by = getattr(actor.user, "username", "") or actor.source
    switch.save()
    audit_record(
        actor=actor, action="update", entity_type="outbox", entity_id="publisher",
        user_action=f"Outbox publisher {'started' if enabled else 'stopped'}",
        before={"enabled": before}, after={"enabled": enabled},
    )
    if enabled:
        from campaigns.outbox import outbox_kick

        transaction.on_commit(outbox_kick)
    return switch
