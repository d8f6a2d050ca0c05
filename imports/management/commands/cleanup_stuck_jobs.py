import json

from django.core.management.base import BaseCommand, CommandParser

from imports import services
from imports.models import ImportJob
from inboxerr.actors import Actor


class Command(BaseCommand):
    help = (
        "Mark stuck import jobs failed (processing with no heartbeat for IMPORT_STUCK_AFTER_SECONDS, "
        "or pending for an hour). With --requeue, hand jobs whose worker died back to the queue instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requeue", action="store_true", help="Resume stuck jobs from their checkpoint instead.")

    def handle(self, *args, requeue: bool, **options) -> None:
        actor = Actor.system("command")
        if requeue:
            requeued = services.imports_recover_stuck(actor=actor)
            self.stdout.write(f"Requeued {len(requeued)} stuck job(s)")
            return
        result = services.imports_cleanup_stuck(actor=actor, jobs=ImportJob.objects.all())
        self.stdout.write(json.dumps(result))
