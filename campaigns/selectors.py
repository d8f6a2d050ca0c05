from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet

from campaigns.models import BatchStatus, Campaign, CampaignKind, MessageBatch, MessageTemplate
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


def batches_for_user(user) -> QuerySet[MessageBatch]:
    qs = MessageBatch.objects.all()
    return qs if user.is_superuser else qs.filter(owner=user)


def batch_get(*, user, batch_id: str) -> MessageBatch:
    batch = batches_for_user(user).filter(batch_id=str(batch_id)[:16]).first() if len(str(batch_id)) == 16 else None
    if batch is None:
        raise NotFound(f"Batch '{batch_id}' not found")
    return batch


def pending_batches(user) -> QuerySet[MessageBatch]:
    """Open batches in the order the publisher takes them: per owner, the one processing first,
    then by batch_sequence."""
    return batches_for_user(user).filter(status__in=[BatchStatus.PENDING, BatchStatus.PROCESSING]).order_by(
        "owner_id", F("status").desc(), "sequence")
