import uuid

from django.conf import settings
from django.db import models


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    PARTIALLY_COMPLETED = "partially_completed", "Partially completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_IMPORT_STATUSES = (ImportStatus.PENDING, ImportStatus.PROCESSING)
# Never stored: an active job whose worker went quiet is shown (and reported by the API) as stuck.
STUCK = "stuck"


def import_status_label(status: str) -> str:
    """The words people read for a status, stored or derived: "Partially completed", "Stuck"."""
    if status == STUCK:
        return "Stuck"
    return dict(ImportStatus.choices).get(status, status)


class ImportSource(models.TextChoices):
    CSV = "csv", "CSV file"
    JSON = "json", "JSON upload"


class ImportJob(models.Model):
    """One import of a file or JSON payload into a subscriber list."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs")
    list = models.ForeignKey(
        "subscribers.SubscriberList", null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    list_name = models.CharField(max_length=200)  # kept after the list is gone, for the record
    source = models.CharField(max_length=8, choices=ImportSource.choices, default=ImportSource.CSV)
    filename = models.CharField(max_length=255, blank=True)
    file_path = models.CharField(max_length=500, blank=True)  # the upload waiting on disk, if any
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size_bytes = models.BigIntegerField(default=0)
    status = models.CharField(max_length=24, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    total_rows = models.BigIntegerField(default=0)
    processed_rows = models.BigIntegerField(default=0)
    created = models.BigIntegerField(default=0)
    updated = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    invalid = models.BigIntegerField(default=0)
    # Secondary fields left out of rows that were kept (a bad phone on an email-keyed list):
    # one per field, counted apart from invalid rows, every one counted even past the report's cap.
    warnings = models.BigIntegerField(default=0, help_text="Fields left out of rows that were kept.")
    progress = models.FloatField(default=0.0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    # Runs that crashed: the worker died (found by the sweeper, or by a worker taking the job
    # over) or the run raised unexpectedly. Past IMPORT_MAX_AUTO_RETRIES the job is failed.
    crash_count = models.PositiveIntegerField(
        default=0, help_text="Runs that crashed their worker; past IMPORT_MAX_AUTO_RETRIES the job is failed."
    )
    checkpoint = models.JSONField(default=dict, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    # How to read the source: key_field, mapping, update_existing, detected encoding/delimiter.
    options = models.JSONField(default=dict, blank=True)
    # Set by the worker that holds the job; a chunk commits only while it still matches, so a
    # job handed to a second worker (after the first went silent) is never written by both.
    worker_token = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="import_owner_created"),
            models.Index(fields=["list", "status"], name="import_list_status"),
            models.Index(fields=["status", "heartbeat_at"], name="import_status_heartbeat"),
        ]

    def __str__(self) -> str:
        # No status here: it is shown live on the job's page, and a title must not go stale.
        return f"{self.filename or self.get_source_display()} into {self.list_name}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_IMPORT_STATUSES


class RowIssueKind(models.TextChoices):
    ERROR = "error", "Error: the row was not imported"
    WARNING = "warning", "Warning: the row was imported without this field"


class ImportRowError(models.Model):
    """A line of an import's report: a row it could not take (an error), or a secondary field
    it left out of a row it took (a warning, naming the column), with the row as it was."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row = models.BigIntegerField(help_text="Row number in the file; the header is row 1.")
    kind = models.CharField(max_length=8, choices=RowIssueKind.choices, default=RowIssueKind.ERROR)
    column = models.CharField(max_length=200, blank=True, help_text="For a warning: the column left out.")
    reason = models.CharField(max_length=500)
    values = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "row"]
        indexes = [models.Index(fields=["job", "row"], name="import_error_job_row")]

    def __str__(self) -> str:
        return f"row {self.row} ({self.kind}): {self.reason}"
