from django.core.management.base import BaseCommand

from campaigns import dispatch


class Command(BaseCommand):
    help = (
        "Put messages whose worker went silent back in the queue (the minute tick does this too). "
        "A message that was in flight becomes 'unknown' unless its channel is idempotent."
    )

    def handle(self, *args, **options) -> None:
        result = dispatch.requeue_expired_leases()
        self.stdout.write(", ".join(f"{status}: {count}" for status, count in result.items()) or "No expired leases")
