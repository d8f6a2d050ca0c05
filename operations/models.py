"""What the dashboard's activity figures are built from: a per-minute rollup of sends, failures
and import rows (operations/services.py fills it every minute), so "sent in the last day" and the
24-hour chart read at most a few thousand small rows instead of scanning the messages table."""

from django.conf import settings
from django.db import models


class ActivityKind(models.TextChoices):
    SENT = "sent", "Messages sent"
    FAILED = "failed", "Messages failed"
    IMPORT_ROWS = "import_rows", "Import rows processed"


class ActivityMinute(models.Model):
    """How much of one kind of work one owner's jobs did in one minute (UTC, truncated)."""

    minute = models.DateTimeField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=ActivityKind.choices)
    # email or sms for a campaign's messages; '' for batch items (one batch may mix channels)
    # and for import rows.
    channel = models.CharField(max_length=8, blank=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # Also the superuser's index: every read is a range of minutes.
            models.UniqueConstraint(fields=["minute", "owner", "kind", "channel"], name="activity_minute_unique"),
        ]
        indexes = [models.Index(fields=["owner", "minute"], name="activity_owner_minute")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.kind} {self.channel or '-'}: {self.count}"


class ActivitySource(models.TextChoices):
    CAMPAIGN = "campaign", "Campaign"
    BATCH = "batch", "Batch"
    IMPORT = "import", "Import job"


class ActivityMark(models.Model):
    """A job's counters as the rollup last read them; the next rollup records only what they grew
    by since."""

    source = models.CharField(max_length=8, choices=ActivitySource.choices)
    source_id = models.CharField(max_length=40)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, blank=True)
    sent = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    rows = models.BigIntegerField(default=0)
    # The job had ended when last read: it is read again only if it starts again (a retry).
    final = models.BooleanField(default=False)
    observed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "source_id"], name="activity_mark_unique")]
        indexes = [models.Index(fields=["final", "observed_at"], name="activity_mark_final")]

    def __str__(self) -> str:
        return f"{self.source} {self.source_id}"


class RollupState(models.Model):
    """One row: when the rollup last ran. Each run locks it, so two runs never count the same
    growth twice."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    ran_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"activity rollup, last run {self.ran_at}"
