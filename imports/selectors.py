"""Reads of import jobs, scoped to what the user owns, and the figures shown for a job."""

import uuid

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from imports.models import ImportJob, ImportStatus
from imports.services import job_display_status
from inboxerr.errors import NotFound
from subscribers.models import SubscriberList


def jobs_for_user(user) -> QuerySet[ImportJob]:
    qs = ImportJob.objects.all()
    return qs if user.is_superuser else qs.filter(owner=user)


def job_get(*, user, job_id: object) -> ImportJob:
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound(f"Import job '{job_id}' not found") from None
    job = jobs_for_user(user).filter(pk=pk).first()
    if job is None:
        raise NotFound(f"Import job '{job_id}' not found")
    return job


def list_to_preselect(*, user, lists: QuerySet[SubscriberList]) -> int | None:
    """The list the wizard offers first, of those the user may pick: the list of their newest
    import (people tend to load the same list again), else their newest list."""
    recent = (jobs_for_user(user).filter(list__in=lists).order_by("-created_at")
              .values_list("list_id", flat=True).first())
    return recent or lists.order_by("-created_at", "-pk").values_list("pk", flat=True).first()


def job_figures(job: ImportJob, now=None) -> dict:
    """Live figures: the derived status (stuck), rows per second and time left."""
    now = now or timezone.now()
    end = job.finished_at or now
    elapsed = (end - job.started_at).total_seconds() if job.started_at else 0.0
    rate = job.processed_rows / elapsed if elapsed > 0 else 0.0
    eta = None
    if job.status == ImportStatus.PROCESSING and job.size_bytes and job.checkpoint.get("offset"):
        done = job.checkpoint["offset"]
        if done and elapsed > 0:
            eta = round((job.size_bytes - done) * elapsed / done, 1)
    return {
        "display_status": job_display_status(job, now),
        "elapsed_seconds": round(elapsed, 2),
        "rows_per_second": round(rate, 1),
        "eta_seconds": eta,
    }


def report_truncated(job: ImportJob) -> bool:
    """Whether the stored report lacks lines the counts include (IMPORT_MAX_STORED_ERRORS)."""
    stats = job.stats or {}
    if "report_truncated" in stats:
        return bool(stats["report_truncated"])
    return job.invalid + job.warnings > max(0, settings.IMPORT_MAX_STORED_ERRORS)


def truncation_note(job: ImportJob) -> str:
    stored = (job.stats or {}).get("report_lines_stored", max(0, settings.IMPORT_MAX_STORED_ERRORS))
    return (f"The report holds the first {stored:,} lines of {job.invalid + job.warnings:,} "
            f"({job.invalid:,} invalid rows, {job.warnings:,} warnings); the counts include every row.")


def format_speed(job: ImportJob, figures: dict) -> str:
    if job.status == ImportStatus.PROCESSING:
        return f"{figures['rows_per_second']:,.0f} records/sec"
    if job.status in (ImportStatus.COMPLETED, ImportStatus.PARTIALLY_COMPLETED) and figures["rows_per_second"]:
        return f"{figures['rows_per_second']:,.0f} records/sec (final)"
    return "Completed" if job.status == ImportStatus.COMPLETED else "-"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def format_efficiency(job: ImportJob) -> str:
    """Share of the input handled: stored, or recognised as a duplicate (seed 000)."""
    if not job.processed_rows:
        return "0.0% processed"
    handled = job.processed_rows - job.invalid
    return f"{100.0 * handled / job.processed_rows:.1f}% processed"


def job_status_entry(job: ImportJob, now=None) -> dict:
    """One entry of seed 000 `GET /jobs/status`."""
    figures = job_figures(job, now)
    total = job.total_rows or job.processed_rows
    return {
        "job_id": str(job.pk),
        "list_name": job.list_name,
        "status": figures["display_status"],
        "stored_status": job.status,
        "source": job.source,
        "filename": job.filename,
        "total": total,
        "processed": job.processed_rows,
        "progress": job.progress,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "heartbeat_at": job.heartbeat_at,
        "error_message": job.error_message,
        "retry_count": job.retry_count,
        "statistics": {
            "total_input": total,
            "successfully_processed": job.processed_rows - job.invalid,
            "created": job.created,
            "updated": job.updated,
            "unchanged": (job.stats or {}).get("unchanged", 0),
            "duplicates": job.duplicates,
            "invalid": job.invalid,
            "warnings": job.warnings,
            "duplicate_percentage": round(100.0 * job.duplicates / job.processed_rows, 2) if job.processed_rows else 0.0,
        },
        "performance_display": {
            "method_text": "Chunked set-based upsert" if job.source == "csv" else "Chunked set-based upsert (JSON)",
            "speed_text": format_speed(job, figures),
            "duration_text": format_duration(figures["elapsed_seconds"]),
            "efficiency_text": format_efficiency(job),
        },
    }
