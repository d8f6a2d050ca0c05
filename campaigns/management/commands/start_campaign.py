from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns import services
from campaigns.models import Campaign
from inboxerr.actors import Actor
from inboxerr.errors import ServiceError


class Command(BaseCommand):
    help = "Start a campaign by id: its messages are created and the dispatchers pick them up."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id")
        parser.add_argument("--sync", action="store_true", help="Create the messages here instead of on a worker.")

    def handle(self, *args, campaign_id: str, sync: bool, **options) -> None:
        campaign = Campaign.objects.filter(pk=campaign_id).first() if _is_uuid(campaign_id) else None
        if campaign is None:
            raise CommandError(f"No campaign {campaign_id}")
        try:
            campaign = services.campaign_start(actor=Actor.system("command"), campaign=campaign)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        if sync:
            campaign = services.campaign_fan_out(campaign_id=campaign.pk)
        self.stdout.write(f"Campaign '{campaign.name}' {campaign.status}: {campaign.total_count:,} messages")


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
