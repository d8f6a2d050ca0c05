from django.core.management.base import BaseCommand, CommandError, CommandParser

from inboxerr.accounts import api_token_create
from inboxerr.actors import Actor
from inboxerr.errors import ServiceError
from inboxerr.management import MAX_DAYS


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it alone on stdout "
        "(send it as 'Authorization: Token <token>'). Only a digest is stored: keep the output."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--expiry-days", type=int, default=None, help="Lifetime in days (default: API_TOKEN_TTL_DAYS).")

    def handle(self, *args, username: str, expiry_days: int | None, **options) -> None:
        if expiry_days is not None and expiry_days <= 0:
            raise CommandError("--expiry-days must be positive")
        if expiry_days is not None and expiry_days > MAX_DAYS:
            raise CommandError(f"--expiry-days must be at most {MAX_DAYS:,}")
        try:
            _, token = api_token_create(actor=Actor.system("command"), username=username, expiry_days=expiry_days)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(token)
