from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from campaigns.models import Campaign, CampaignKind, MessageTemplate
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
