from rest_framework import serializers

from imports.models import ImportJob
from imports.selectors import job_figures, report_truncated
from subscribers.api.serializers import ListNameField
from subscribers.models import KeyField


class ImportCsvSerializer(serializers.Serializer):
    """The multipart form of POST /api/v1/imports/csv (the file itself streams to disk)."""

    file = serializers.FileField(help_text="The CSV file (UTF-8, UTF-8 with BOM or cp1252; comma, semicolon or tab).")
    list_name = ListNameField()
    key_field = serializers.ChoiceField(choices=KeyField.choices, required=False)
    mapping = serializers.JSONField(required=False, help_text='Column -> field, e.g. {"E-mail": "email", "Tier": "custom:plan", "Notes": "ignore"}')
    keep_raw = serializers.JSONField(
        required=False,
        help_text='Columns whose invalid value is kept as written in a custom field "<field>_raw" (e.g. ["Phone"]); '
                  "otherwise a bad secondary value (a phone on an email-keyed list) is left out. Either way the row "
                  "is imported and the report holds a warning for it.",
    )
    update_existing = serializers.BooleanField(default=True)
    force = serializers.BooleanField(default=False, help_text="Import a file already imported into this list.")


class ImportJobSerializer(serializers.ModelSerializer):
    import_id = serializers.UUIDField(source="id", read_only=True)
    status = serializers.SerializerMethodField(help_text="The stored status, or `stuck` when the worker went quiet.")
    stored_status = serializers.CharField(source="status", read_only=True)
    unchanged = serializers.SerializerMethodField()
    rows_per_second = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    report_truncated = serializers.SerializerMethodField(
        help_text="True when the report (`/errors`) holds only the first IMPORT_MAX_STORED_ERRORS lines; "
                  "`invalid` and `warnings` still count every row."
    )

    class Meta:
        model = ImportJob
        fields = [
            "import_id", "id", "list_name", "source", "filename", "sha256", "size_bytes", "status", "stored_status",
            "total_rows", "processed_rows", "created", "updated", "unchanged", "duplicates", "invalid", "warnings", "progress",
            "rows_per_second", "eta_seconds", "heartbeat_at", "started_at", "finished_at", "error_message",
            "retry_count", "crash_count", "checkpoint", "stats", "report_truncated", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def _figures(self, job: ImportJob) -> dict:
        cache = self.context.setdefault("_figures", {})
        if job.pk not in cache:
            cache[job.pk] = job_figures(job)
        return cache[job.pk]

    def get_report_truncated(self, job: ImportJob) -> bool:
        return report_truncated(job)

    def get_status(self, job: ImportJob) -> str:
        return self._figures(job)["display_status"]

    def get_unchanged(self, job: ImportJob) -> int:
        return (job.stats or {}).get("unchanged", 0)

    def get_rows_per_second(self, job: ImportJob) -> float:
        return self._figures(job)["rows_per_second"]

    def get_eta_seconds(self, job: ImportJob) -> float | None:
        return self._figures(job)["eta_seconds"]


class ImportAcceptedSerializer(serializers.Serializer):
    import_id = serializers.UUIDField()
    job_id = serializers.UUIDField()
    status = serializers.CharField()
    sha256 = serializers.CharField()
    list_name = serializers.CharField()
    filename = serializers.CharField()
    size_bytes = serializers.IntegerField()
    message = serializers.CharField()


class BackgroundUploadSerializer(serializers.Serializer):
    list_name = ListNameField()
    # Any JSON value: a record that is not an object (null included) becomes a row error of the job.
    subscribers = serializers.ListField(child=serializers.JSONField(allow_null=True), allow_empty=False, min_length=1,
                                        max_length=1_000_000)
    processing_mode = serializers.ChoiceField(choices=["background"], default="background")


class ImportListParamsSerializer(serializers.Serializer):
    # Blank is absent: `?status=` lists every job.
    status = serializers.CharField(required=False, allow_blank=True)
    list_name = serializers.CharField(required=False, allow_blank=True)


class CleanupResultSerializer(serializers.Serializer):
    message = serializers.CharField()
    cleaned = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    stuck_jobs = serializers.ListField(child=serializers.DictField())


class ForceRetryResultSerializer(serializers.Serializer):
    message = serializers.CharField()
    job_id = serializers.UUIDField()
    retry_count = serializers.IntegerField()


class ClearResultSerializer(serializers.Serializer):
    message = serializers.CharField()
    deleted_count = serializers.IntegerField()


class QueueStatusSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    processing = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    stuck = serializers.IntegerField()
