import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inboxerr.accounts import admin_ensure, roles_ensure
from inboxerr.errors import ServiceError


class Command(BaseCommand):
    help = (
        "First-run setup: the Operators group and a first superuser. The user's name and password "
        "come from INBOXERR_ADMIN_USER / INBOXERR_ADMIN_PASSWORD, or default to 'admin' and a "
        "generated password, printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("INBOXERR_ADMIN_USER", "admin"))

    def handle(self, *args, username: str, **options) -> None:
        roles_ensure()
        try:
            user, password = admin_ensure(username=username, password=os.environ.get("INBOXERR_ADMIN_PASSWORD"))
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        if password:
            self.stdout.write(self.style.SUCCESS(f"Created superuser '{user.username}' with password: {password}"))
        else:
            self.stdout.write(f"Superuser '{user.username}' already exists (password unchanged).")
