from django.core.exceptions import ValidationError
from django.db.models import Count, F, QuerySet, Sum
from django.utils import timezone

from campaigns.models import (
    BATCH_SENDING_ORDER, OPEN_BATCH_STATUSES, BatchStatus, BatchStream, Campaign, CampaignKind, CampaignStatus,
    MessageBatch, MessageTemplate, RateLimit,
)
from inboxerr.errors import NotFound


def templates_for_user(user) -> QuerySet[MessageTemplate]:
    qs = MessageTemplate.objects.all()
    return qs if user.is_superuser else qs.filter(owner=user)


def campaigns_for_user(user, kind: str = CampaignKind.CAMPAIGN) -> QuerySet[Campaign]:
    qs = Campaign.objects.filter(kind=kind)
    return qs if user.is_superuser else qs.filter(owner=user)


def campaign_get(*, user, campaign_id, kind: str = CampaignKind.CAMPAIGN) -> Campaign:
    try:
        campaign = campaigns_for_user(user, kind).filter(pk=campaign_id).first()
    except (ValueError, TypeError, ValidationError):
        campaign = None
    if campaign is None:
        raise NotFound(f"Campaign '{campaign_id}' not found")
    return campaign


def campaign_figures(campaign: Campaign, now=None) -> dict:
    """Progress, pace and time left, from the campaign's counters (O(1) at any size): the API,
    the task tracker, the live pages and the dashboard all show these same figures."""
    to_send = campaign.total_count - campaign.skipped_count
    done = campaign.sent_count + campaign.failed_count + campaign.unknown_count
    if to_send <= 0:
        progress = 100.0 if campaign.status == CampaignStatus.COMPLETED else 0.0
    else:
        progress = round(100.0 * done / to_send, 1)
    elapsed = 0.0
    if campaign.started_at:
        elapsed = max(0.0, ((campaign.finished_at or now or timezone.now()) - campaign.started_at).total_seconds())
    rate = done / elapsed if elapsed > 0 else 0.0  # unrounded: a slow send is a fraction a second
    eta = round(campaign.pending_count / rate, 1) if campaign.status == CampaignStatus.RUNNING and rate else None
    return {"progress": progress, "send_rate": rate, "eta_seconds": eta, "elapsed_seconds": round(elapsed, 1)}


def batch_figures(batch: MessageBatch, now=None) -> dict:
    """The same for a batch of the batch API: items finished per second since it started."""
    elapsed = 0.0
    if batch.started_at:
        elapsed = max(0.0, ((batch.finished_at or now or timezone.now()) - batch.started_at).total_seconds())
    done = batch.sent_count + batch.failed_count
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = round(batch.unsent_count / rate, 1) if batch.status == BatchStatus.PROCESSING and rate else None
    return {"progress": batch.progress, "send_rate": rate, "eta_seconds": eta, "elapsed_seconds": round(elapsed, 1)}


def batches_for_user(user) -> QuerySet[MessageBatch]:
    qs = MessageBatch.objects.all()
    return qs if user.is_superuser else qs.filter(owner=user)


def batch_get(*, user, batch_id: str) -> MessageBatch:
    batch = batches_for_user(user).filter(batch_id=str(batch_id)[:16]).first() if len(str(batch_id)) == 16 else None
    if batch is None:
        raise NotFound(f"Batch '{batch_id}' not found")
    return batch


def outbox_overview(user) -> dict:
    """The user's batches by status, their unsent items, the batches being sent now, and how many
    of the user's streams (all, for a superuser) a publisher holds at this moment."""
    mine = batches_for_user(user)
    counts = {status: 0 for status in BatchStatus.values}
    counts.update(dict(mine.values_list("status").annotate(n=Count("pk")).values_list("status", "n")))
    unsent = mine.filter(status__in=OPEN_BATCH_STATUSES).aggregate(
        n=Sum(F("total_items") - F("sent_count") - F("failed_count") - F("skipped_count")))["n"]
    streams = BatchStream.objects.filter(leased_until__gt=timezone.now())
    if not user.is_superuser:
        streams = streams.filter(owner=user)
    return {
        "batches": counts,
        "items_unsent": max(unsent or 0, 0),
        "current_batches": list(mine.filter(status=BatchStatus.PROCESSING).select_related("owner").order_by("owner_id")),
        "active_publishers": streams.count(),
    }


def pending_batches(user) -> QuerySet[MessageBatch]:
    """Open batches in the order the publisher takes them: per owner, the one processing first,
    then by batch_sequence."""
    return batches_for_user(user).filter(status__in=OPEN_BATCH_STATUSES).order_by("owner_id", *BATCH_SENDING_ORDER)


def send_estimate(*, channel: str, count: int) -> dict:
    """The pace a start would go at: the channel's rate-limit row (one bucket shared by every
    campaign and owner on the channel) and count / rate, how long the limit lets the sends take
    (a full bucket lets its first `burst` go at once, which only matters for small counts).
    `rate` is None when the channel has no enabled limit, 0 when sending on it is paused."""
    row = RateLimit.objects.filter(name=channel).values("rate", "burst", "enabled").first()
    if row is None or not row["enabled"]:
        return {"channel": channel, "count": count, "rate": None, "burst": None, "seconds": None}
    rate = max(row["rate"], 0.0)
    return {"channel": channel, "count": count, "rate": rate, "burst": row["burst"],
            "seconds": count / rate if rate else None}
