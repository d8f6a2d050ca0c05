from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.services import messages_purge
from inboxerr.actors import Actor
from inboxerr.management import MAX_DAYS


class Command(BaseCommand):
    help = "Delete message rows of finished campaigns older than DAYS days (the counters on the campaign stay)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")

    def handle(self, *args, older_than: int, **options) -> None:
        if older_than < 1:
            raise CommandError("--older-than must be at least 1 day")
        if older_than > MAX_DAYS:
            raise CommandError(f"--older-than must be at most {MAX_DAYS:,} days")
        deleted = messages_purge(actor=Actor.system("command"), older_than_days=older_than)
        self.stdout.write(f"Deleted {deleted:,} messages")
