import csv

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inboxerr.actors import Actor
from inboxerr.errors import ServiceError
from subscribers import selectors, services


class Command(BaseCommand):
    help = "Export a subscriber list as CSV (every standard and custom field a column), streamed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("list_name", metavar="LIST")
        parser.add_argument("--output", "-o", required=True, help="File to write, or - for stdout.")
        parser.add_argument("--owner", required=True, help="Username owning the list.")

    def handle(self, *args, list_name: str, output: str, owner: str, **options) -> None:
        try:
            user = selectors.user_by_username(owner)
            subscriber_list = selectors.list_get(user=user, name=list_name)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        # The file is opened before the export is recorded: an export that cannot be written is
        # not one (and no file is made for a list that does not exist).
        try:
            handle = self.stdout if output == "-" else open(output, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"--output {output}: {exc.strerror}") from None
        rows = services.list_export(actor=Actor(user=None, source="command"), subscriber_list=subscriber_list)
        count = -1
        try:
            writer = csv.writer(handle)
            for count, row in enumerate(rows):
                writer.writerow(row)
        finally:
            if output != "-":
                handle.close()
        if output != "-":
            self.stderr.write(f"Exported {max(count, 0):,} subscribers of '{list_name}' to {output}")
