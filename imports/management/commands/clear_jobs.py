from django.core.management.base import BaseCommand

from imports import services
from imports.models import ImportJob
from inboxerr.actors import Actor


class Command(BaseCommand):
    help = "Delete the records of finished import jobs (completed, partially completed, failed, cancelled)."

    def handle(self, *args, **options) -> None:
        result = services.jobs_clear(actor=Actor.system("command"), jobs=ImportJob.objects.all())
        self.stdout.write(result["message"])
