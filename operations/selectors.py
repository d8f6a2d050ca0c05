"""The reads behind the operations dashboard (the admin index). Each one is cheap at 1M
subscribers and 10M messages: none counts the subscribers or messages tables; the docstrings say
what each reads instead. A superuser sees everything; anyone else only what they own."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker

from campaigns.models import OPEN_BATCH_STATUSES, BatchStatus, Campaign, Message, MessageStatus
from campaigns.selectors import batch_figures, batches_for_user, campaign_figures
from imports.models import ACTIVE_IMPORT_STATUSES, ImportStatus
from imports.selectors import job_figures, jobs_for_user
from inboxerr.health import HEARTBEAT_NAME
from inboxerr.models import WorkerHeartbeat
from operations.models import ActivityKind, ActivityMinute
from operations.services import SENDING_CAMPAIGNS
from subscribers.selectors import lists_for_user

SHOWN = 10  # rows per table on the dashboard


def _owned(qs: QuerySet, user) -> QuerySet:
    """For the querysets without a selector of their app: campaigns of every kind (the campaigns
    app scopes one kind at a time) and this app's rollup rows."""
    return qs if user.is_superuser else qs.filter(owner=user)


def audience_totals(user) -> dict:
    """Lists and subscribers: the sum of each list's maintained subscriber_count, one row per
    list (never a count over the subscribers table)."""
    totals = lists_for_user(user).aggregate(lists=Count("pk"), subscribers=Sum("subscriber_count"))
    return {"lists": totals["lists"], "subscribers": totals["subscribers"] or 0}


def running_imports(user, now: datetime) -> list[dict]:
    """Pending and processing jobs (import_status_heartbeat leads with status), with the job's
    own rows/s and ETA."""
    jobs = jobs_for_user(user).filter(status__in=ACTIVE_IMPORT_STATUSES).order_by("-created_at")[:SHOWN]
    rows = []
    for job in jobs:
        figures = job_figures(job, now)
        rows.append({"job": job, "status": figures["display_status"], "rows_per_second": figures["rows_per_second"],
                     "eta_seconds": figures["eta_seconds"],
                     "url": reverse("admin:imports_importjob_change", args=[job.pk])})
    return rows


def sending_campaigns(user, now: datetime) -> list[dict]:
    """Campaigns and bulk email jobs that are starting, running or paused (campaign_status
    index); progress, rate and ETA come from the campaign's own counters."""
    campaigns = _owned(Campaign.objects.filter(status__in=SENDING_CAMPAIGNS), user).order_by("-created_at")[:SHOWN]
    rows = []
    for campaign in campaigns:
        figures = campaign_figures(campaign, now)
        rows.append({"campaign": campaign, "progress": figures["progress"], "per_minute": figures["send_rate"] * 60,
                     "eta_seconds": figures["eta_seconds"],
                     "url": reverse("admin:campaigns_campaign_change", args=[campaign.pk])})
    return rows


def sending_batches(user, now: datetime) -> list[dict]:
    """Open batches of the batch API, the one being sent first (a batch row each, never its
    items)."""
    batches = batches_for_user(user).filter(status__in=OPEN_BATCH_STATUSES).order_by(
        F("status").desc(), "owner_id", "sequence")[:SHOWN]
    rows = []
    for batch in batches:
        figures = batch_figures(batch, now)
        rows.append({"batch": batch, "per_minute": figures["send_rate"] * 60, "eta_seconds": figures["eta_seconds"],
                     "url": reverse("admin:campaigns_messagebatch_change", args=[batch.pk])})
    return rows


def queue_depth(user) -> list[dict]:
    """Messages waiting to be sent, per channel: what the counters of sending campaigns and open
    batches have left (one row per job). Exact as long as the counters are, and owner-scoped,
    which a capped count over the message_queued index would not be without a join."""
    pending = F("total_count") - F("sent_count") - F("failed_count") - F("skipped_count") - F("unknown_count") \
        - F("cancelled_count")
    campaigns = _owned(Campaign.objects.filter(status__in=SENDING_CAMPAIGNS), user)
    depth = {channel: max(n or 0, 0) for channel, n in
             campaigns.values_list("channel").annotate(n=Sum(pending)).values_list("channel", "n")}
    unsent = batches_for_user(user).filter(status__in=OPEN_BATCH_STATUSES).aggregate(
        n=Sum(F("total_items") - F("sent_count") - F("failed_count") - F("skipped_count")))["n"]
    rows = [{"channel": channel, "label": channel.upper() if channel == "sms" else channel, "count": depth[channel]}
            for channel in sorted(depth)]
    rows.append({"channel": "batch", "label": "batch items", "count": max(unsent or 0, 0)})
    return rows


def _activity(user, since: datetime) -> QuerySet[ActivityMinute]:
    return _owned(ActivityMinute.objects.filter(minute__gte=since), user)


def activity_totals(user, now: datetime) -> dict:
    """Sent, failed and import rows in the last hour and day: at most 1,440 rollup rows per
    owner, kind and channel (activity_minute_unique / activity_owner_minute)."""
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    rows = _activity(user, day_ago).values("kind").annotate(
        day=Sum("count"), hour=Sum("count", filter=Q(minute__gte=hour_ago)))
    totals = {kind: {"hour": 0, "day": 0} for kind in ActivityKind.values}
    for row in rows:
        totals[row["kind"]] = {"hour": row["hour"] or 0, "day": row["day"] or 0}
    return totals


def activity_series(user, now: datetime, minutes: int = 24 * 60) -> dict:
    """Per-minute sends and import rows over the `minutes` up to and including the current one,
    oldest first, zero where nothing happened (the same rollup rows, summed over owners and
    channels); `end` is where the last minute ends."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    series = {ActivityKind.SENT: [0] * minutes, ActivityKind.IMPORT_ROWS: [0] * minutes}
    rows = _activity(user, start).filter(kind__in=list(series)).values("minute", "kind").annotate(n=Sum("count"))
    for row in rows:
        index = int((row["minute"] - start).total_seconds() // 60)
        if 0 <= index < minutes:
            series[row["kind"]][index] = row["n"]
    return {**{str(kind): values for kind, values in series.items()}, "end": end}


def worker_health(now: datetime) -> dict:
    """The heartbeat rows (one per beating worker name) and django-q2's queue length (a count of
    its small ORM queue table, or LLEN on Redis)."""
    max_age = settings.WORKER_HEARTBEAT_MAX_AGE.total_seconds()
    beats = []
    for beat in WorkerHeartbeat.objects.order_by("name"):
        age = (now - beat.beat_at).total_seconds()
        beats.append({"beat": beat, "age_seconds": age, "fresh": age <= max_age})
    return {"beats": beats, "ok": any(b["fresh"] and b["beat"].name == HEARTBEAT_NAME for b in beats),
            "queued_tasks": _task_queue_size()}


def _task_queue_size() -> int | None:
    try:
        return get_broker().queue_size()
    except Exception:  # a broker that cannot answer is reported as unknown, not as a broken page
        return None


@dataclass
class Failure:
    at: datetime
    kind: str
    name: str
    url: str
    detail: str
    messages_url: str = ""
    sample_error: str = field(default="")


def recent_failures(user) -> list[Failure]:
    """The latest campaigns and batches with failed messages and the latest failed imports,
    newest first. Reads job rows only; the one sample error per campaign is a LIMIT 1 on the
    message_campaign_status index."""
    messages = reverse("admin:campaigns_message_changelist")
    failures = []
    campaigns = _owned(Campaign.objects.filter(failed_count__gt=0), user).order_by("-created_at")[:SHOWN]
    for campaign in campaigns:
        # Any one failed message, unordered: .first() would sort all of a campaign's failures.
        sample = next(iter(Message.objects.filter(campaign=campaign, status=MessageStatus.FAILED).values_list(
            "last_error", flat=True)[:1]), "")
        failures.append(Failure(
            at=campaign.finished_at or campaign.started_at or campaign.created_at, kind="campaign", name=campaign.name,
            url=reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
            detail=f"{campaign.failed_count:,} failed of {campaign.total_count:,} ({campaign.get_status_display()})",
            messages_url=f"{messages}?campaign__id__exact={campaign.pk}&status__exact={MessageStatus.FAILED}",
            sample_error=sample or "",
        ))
    batches = batches_for_user(user).filter(Q(status=BatchStatus.FAILED) | Q(failed_count__gt=0)).order_by(
        "-updated_at")[:SHOWN]
    for batch in batches:
        failures.append(Failure(
            at=batch.updated_at, kind="batch", name=f"batch {batch.batch_id} (#{batch.sequence})",
            url=reverse("admin:campaigns_messagebatch_change", args=[batch.pk]),
            detail=batch.status_reason or f"{batch.failed_count:,} failed of {batch.total_items:,}",
            messages_url=f"{messages}?batch__id__exact={batch.pk}&status__exact={MessageStatus.FAILED}",
        ))
    jobs = jobs_for_user(user).filter(status=ImportStatus.FAILED).order_by("-created_at")[:SHOWN]
    for job in jobs:
        failures.append(Failure(
            at=job.finished_at or job.updated_at, kind="import", name=f"{job.list_name} ({job.filename or job.source})",
            url=reverse("admin:imports_importjob_change", args=[job.pk]), detail=job.error_message[:300],
        ))
    return sorted(failures, key=lambda f: f.at, reverse=True)[:SHOWN]


def dashboard(*, user, now: datetime | None = None) -> dict:
    """Everything the admin index shows, for this user."""
    now = now or timezone.now()
    return {
        "now": now,
        "audience": audience_totals(user),
        "imports": running_imports(user, now),
        "campaigns": sending_campaigns(user, now),
        "batches": sending_batches(user, now),
        "queue": queue_depth(user),
        "activity": activity_totals(user, now),
        "series": activity_series(user, now),
        "workers": worker_health(now),
        "failures": recent_failures(user),
    }
