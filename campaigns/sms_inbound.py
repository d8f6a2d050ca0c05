"""Replies to our SMS: the carrier opt-out keywords.

STOP (and STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) from a number suppresses it on the SMS channel
for every owner who has a subscriber with that number, and marks those subscribers unsubscribed.
START (or UNSTOP) lifts the suppressions a STOP creates (reason `unsubscribed`; a manual block, a
bounce or a complaint stays) and makes those subscribers active again, unless their email
address is suppressed too (they also unsubscribed from email, which a text cannot undo).

A keyword is the whole message, any case, trailing punctuation ignored ("Stop." counts, "stop
texting me" does not), as carriers and Twilio read them. Anything else changes nothing.

Each signed request is acted on once: its signature is recorded in the transaction of the
changes, so a captured START played again (or twice at once) changes nothing.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from campaigns.models import SmsInboundReceipt
from inboxerr.actors import Actor
from inboxerr.errors import InvalidInput, ServiceError
from subscribers.models import Channel, Subscriber, SubscriberStatus, Suppression, SuppressionReason
from subscribers.normalize import RecordError, normalize_phone
from subscribers.services import suppression_create, suppression_delete

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})


class AlreadyProcessed(ServiceError):
    """The same signed request was accepted before, within the tolerance window."""

    status_code = 403


class InboundAction(StrEnum):
    STOP = "stop"
    START = "start"
    NONE = "none"


@dataclass
class InboundResult:
    action: InboundAction
    phone: str
    owners: int = 0  # owners who have a subscriber with this number
    suppressions_created: int = 0
    suppressions_removed: int = 0
    subscribers_changed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def keyword_action(body: str) -> InboundAction:
    word = (body or "").strip().rstrip(".!").strip().upper()
    if word in STOP_WORDS:
        return InboundAction.STOP
    if word in START_WORDS:
        return InboundAction.START
    return InboundAction.NONE


@transaction.atomic
def sms_inbound_receive(*, actor: Actor, sender: str, body: str, signature: str, signed_at: datetime) -> InboundResult:
    """Act on one inbound SMS from `sender` (any phone format, normalised to E.164).

    `signature` is the request's verified HMAC (hex) and `signed_at` its timestamp; a signature
    recorded before raises AlreadyProcessed and nothing changes."""
    _receipt_record(signature, signed_at)
    try:
        phone = normalize_phone(sender)
    except RecordError as exc:
        raise InvalidInput(f"from: {exc.message}", field="from") from None
    if not phone:
        raise InvalidInput("from: is required", field="from")
    result = InboundResult(action=keyword_action(body), phone=phone)
    if result.action == InboundAction.NONE:
        return result
    owner_ids = sorted(set(Subscriber.objects.filter(phone=phone).values_list("list__owner_id", flat=True)))
    result.owners = len(owner_ids)
    for owner in get_user_model().objects.filter(pk__in=owner_ids).order_by("pk"):
        if result.action == InboundAction.STOP:
            result.suppressions_created += _suppress(actor, owner, phone)
            result.subscribers_changed += _set_status(actor, owner, phone, body, SubscriberStatus.UNSUBSCRIBED)
        else:
            result.suppressions_removed += _unsuppress(actor, owner, phone)
            result.subscribers_changed += _set_status(actor, owner, phone, body, SubscriberStatus.ACTIVE)
    return result


def _receipt_record(signature: str, signed_at: datetime) -> None:
    try:
        # A savepoint: the collision must not break the transaction it is raised through.
        with transaction.atomic():
            SmsInboundReceipt.objects.create(signature=signature, signed_at=signed_at)
    except IntegrityError:
        # Also what a second copy racing the first gets: its insert waits on the unique key
        # until the first commits (or goes ahead if the first rolled back).
        raise AlreadyProcessed("Request already processed: this X-Inboxerr-Signature was accepted before") from None


def sms_inbound_receipts_purge() -> int:
    """Forget receipts whose timestamp is past the tolerance: such a request is refused as too
    old anyway. Run by the minute tick, not per request, so requests never wait on each other's
    deletes."""
    cutoff = timezone.now() - timedelta(seconds=settings.SMS_INBOUND_TOLERANCE_SECONDS)
    deleted, _ = SmsInboundReceipt.objects.filter(signed_at__lt=cutoff).delete()
    return deleted


def _suppress(actor: Actor, owner, phone: str) -> int:
    if Suppression.objects.filter(owner=owner, channel=Channel.SMS, address=phone).exists():
        return 0  # already suppressed: its first reason stays
    try:
        suppression_create(actor=actor, owner=owner, channel=Channel.SMS, address=phone,
                           reason=SuppressionReason.UNSUBSCRIBED)
    except IntegrityError:  # a concurrent STOP got there first (its savepoint rolled back)
        return 0
    return 1


def _unsuppress(actor: Actor, owner, phone: str) -> int:
    suppressions = Suppression.objects.filter(
        owner=owner, channel=Channel.SMS, address=phone, reason=SuppressionReason.UNSUBSCRIBED
    )
    removed = 0
    for suppression in suppressions.select_for_update():
        suppression_delete(actor=actor, suppression=suppression)
        removed += 1
    return removed


def _set_status(actor: Actor, owner, phone: str, body: str, status: str) -> int:
    """Set the status of this owner's subscribers with `phone`: one UPDATE, one audit row."""
    subscribers = Subscriber.objects.filter(list__owner=owner, phone=phone)
    if status == SubscriberStatus.UNSUBSCRIBED:
        subscribers = subscribers.exclude(status=SubscriberStatus.UNSUBSCRIBED)
    else:
        email_suppressed = Suppression.objects.filter(owner=owner, channel=Channel.EMAIL).values("address")
        subscribers = subscribers.filter(status=SubscriberStatus.UNSUBSCRIBED).exclude(email__in=email_suppressed)
    changed = list(subscribers.select_for_update(of=("self",)).values_list("pk", "status"))
    if not changed:
        return 0
    ids = [pk for pk, _ in changed]
    Subscriber.objects.filter(pk__in=ids).update(status=status, updated_at=timezone.now())
    keyword = body.strip().upper()[:20]
    audit_record(
        actor=actor,
        action="update",
        entity_type="subscriber",
        entity_id=ids[0] if len(ids) == 1 else "",
        owner_id=owner.pk,
        user_action=f"SMS {keyword} from {phone}: {len(ids)} subscriber(s) set to {status}",
        before={"status": sorted({old for _, old in changed})},
        after={"status": status},
        metadata={"subscriber_ids": ids[:1000], "count": len(ids), "phone": phone, "keyword": keyword},
    )
    return len(ids)
