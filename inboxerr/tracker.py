"""One tracker for every background job (`GET /api/v1/tasks/{id}`): the id an API handed back
with its 202 (an import, a campaign start, a bulk email job) is looked up wherever it lives and
described the same way: kind, status, progress, result, error, links."""

import re
import uuid
from dataclasses import dataclass

from campaigns import bulk_email
from campaigns.models import Campaign, CampaignKind, MessageBatch
from campaigns.selectors import batch_figures, batches_for_user, campaign_figures
from imports.models import ImportJob
from imports.selectors import job_figures, jobs_for_user
from inboxerr.errors import NotFound


# The statuses after which a task changes no more, in every kind's own words.
FINISHED_STATUSES = frozenset({"completed", "partially_completed", "failed", "cancelled", "committed"})

# A batch of the batch API is tracked by its 16-hex batch_id; every other job by its UUID.
_BATCH_ID = re.compile(r"[0-9a-f]{16}")


class TaskKind:
    IMPORT = "import"
    CAMPAIGN = "campaign"
    BULK_EMAIL = "bulk_email"
    BATCH = "batch"


# The model permission a caller needs to read each kind of task.
TASK_PERMISSIONS = {
    TaskKind.IMPORT: "imports.view_importjob",
    TaskKind.CAMPAIGN: "campaigns.view_campaign",
    TaskKind.BULK_EMAIL: "campaigns.view_campaign",
    TaskKind.BATCH: "campaigns.view_messagebatch",
}


@dataclass(frozen=True)
class Task:
    kind: str
    data: dict

    @property
    def permission(self) -> str:
        return TASK_PERMISSIONS[self.kind]


def task_get(*, user, task_id: object) -> Task:
    """The caller's task with this id, whatever kind it is; NotFound for an unknown id or one
    that belongs to someone else (the same answer, so ids cannot be probed)."""
    if _BATCH_ID.fullmatch(str(task_id)):
        batch = batches_for_user(user).filter(batch_id=str(task_id)).first()
        if batch is not None:
            return Task(TaskKind.BATCH, _batch_task(batch))
        raise NotFound(f"Task '{task_id}' not found")
    try:
        pk = uuid.UUID(str(task_id))
    except ValueError:
        raise NotFound(f"Task '{task_id}' not found") from None
    job = jobs_for_user(user).filter(pk=pk).first()
    if job is not None:
        return Task(TaskKind.IMPORT, _import_task(job))
    campaigns = Campaign.objects.all() if user.is_superuser else Campaign.objects.filter(owner=user)
    campaign = campaigns.filter(pk=pk).first()
    if campaign is not None:
        if campaign.kind == CampaignKind.BULK_EMAIL:
            return Task(TaskKind.BULK_EMAIL, _bulk_email_task(campaign))
        return Task(TaskKind.CAMPAIGN, _campaign_task(campaign))
    raise NotFound(f"Task '{task_id}' not found")


def _entry(pk, kind: str, *, status: str, progress: float, result: dict, error: str | None, created_at,
           updated_at, links: dict, rate: float = 0.0, rate_unit: str = "messages", eta_seconds: float | None = None,
           started_at=None, finished_at=None) -> dict:
    return {
        "id": str(pk), "kind": kind, "status": status, "progress": progress, "result": result,
        "rate": round(rate, 2), "rate_unit": rate_unit, "eta_seconds": eta_seconds,
        "error": error or None, "created_at": created_at, "updated_at": updated_at,
        "started_at": started_at, "finished_at": finished_at,
        "links": {"self": f"/api/v1/tasks/{pk}", **links},
    }


def _import_task(job: ImportJob) -> dict:
    figures = job_figures(job)
    return _entry(
        job.pk, TaskKind.IMPORT, status=figures["display_status"], progress=job.progress,
        result={"total_rows": job.total_rows, "processed_rows": job.processed_rows, "created": job.created,
                "updated": job.updated, "duplicates": job.duplicates, "invalid": job.invalid,
                "warnings": job.warnings, "report_lines": job.invalid + job.warnings},
        error=job.error_message, created_at=job.created_at, updated_at=job.updated_at,
        rate=figures["rows_per_second"], rate_unit="rows", eta_seconds=figures["eta_seconds"],
        started_at=job.started_at, finished_at=job.finished_at,
        links={"detail": f"/api/v1/imports/{job.pk}", "errors": f"/api/v1/imports/{job.pk}/errors"},
    )


def _campaign_task(campaign: Campaign) -> dict:
    figures = campaign_figures(campaign)
    return _entry(
        campaign.pk, TaskKind.CAMPAIGN, status=campaign.status, progress=figures["progress"],
        result={"total": campaign.total_count, "sent": campaign.sent_count, "failed": campaign.failed_count,
                "skipped": campaign.skipped_count, "unknown": campaign.unknown_count,
                "pending": campaign.pending_count},
        error=campaign.status_reason, created_at=campaign.created_at, updated_at=campaign.updated_at,
        rate=figures["send_rate"], eta_seconds=figures["eta_seconds"],
        started_at=campaign.started_at, finished_at=campaign.finished_at,
        links={"detail": f"/api/v1/campaigns/{campaign.pk}", "messages": f"/api/v1/campaigns/{campaign.pk}/messages"},
    )


def _bulk_email_task(job: Campaign) -> dict:
    """In the job's own words (seed 004), as `job-status` reports it."""
    status = bulk_email.job_status(job)
    figures = bulk_email.job_figures(job)
    pace = campaign_figures(job)
    return _entry(
        job.pk, TaskKind.BULK_EMAIL, status=status, progress=float(figures.pop("progress_percentage")),
        result={**figures, "skipped": job.skipped_count},
        error=bulk_email.job_error_message(job, status), created_at=job.created_at, updated_at=job.updated_at,
        rate=pace["send_rate"], eta_seconds=pace["eta_seconds"], started_at=job.started_at,
        finished_at=job.finished_at,
        links={"detail": f"/api/v1/bulk-email/job-status/{job.pk}", "cancel": f"/api/v1/bulk-email/jobs/{job.pk}/cancel"},
    )


def _batch_task(batch: MessageBatch) -> dict:
    base = f"/api/v1/outbox/batch/{batch.batch_id}"
    figures = batch_figures(batch)
    return _entry(
        batch.batch_id, TaskKind.BATCH, status=batch.status, progress=batch.progress,
        result={"batch_sequence": batch.sequence, "total_items": batch.total_items, "sent": batch.sent_count,
                "failed": batch.failed_count, "skipped": batch.skipped_count, "unsent": batch.unsent_count},
        error=batch.status_reason, created_at=batch.created_at, updated_at=batch.updated_at,
        rate=figures["send_rate"], eta_seconds=figures["eta_seconds"], started_at=batch.started_at,
        finished_at=batch.finished_at,
        links={"detail": f"{base}/status", "items": f"{base}/items"},
    )
