"""The activity rollup: every minute, how many messages were sent and failed and how many import
rows were processed, per owner, into ActivityMinute.

Why counter deltas and not a scan of `sent_at`: the jobs already keep exact counters in the
transaction that does the work (a campaign's sent_count/failed_count, a batch's, an import's
processed_rows). Reading them costs one row per *running* job, whatever the size of the messages
table; a scan by `sent_at` would need a new index on the hottest table (one more index write per
send) and failures have no timestamp at all. Import rows come the same way, from processed_rows:
subscriber timestamps would miss duplicates, invalid rows and rows that changed nothing.

The price: a minute is when the rollup *saw* the growth, not when each message went. The growth
between two runs is spread over the minutes between them in proportion to their overlap, so a
run delayed by busy workers gives a flat stretch, not a spike. Each job's last-seen counters are
an ActivityMark; a run locks the RollupState row, reads, and writes minutes and marks in one
transaction, so running it twice (or two workers at once) never counts anything twice."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import BatchStatus, Campaign, CampaignStatus, MessageBatch
from imports.models import ACTIVE_IMPORT_STATUSES, ImportJob
from operations.models import ActivityKind, ActivityMark, ActivityMinute, ActivitySource, RollupState

# A run longer ago than this is not spread further back: the chart shows an hour of catching up
# rather than a day of invented minutes.
MAX_SPREAD = timedelta(hours=1)
MINUTES_KEPT = timedelta(days=8)
MARKS_KEPT = timedelta(days=7)

# A campaign's counters can grow in these (paused: the sends already in flight still land).
SENDING_CAMPAIGNS = (CampaignStatus.STARTING, CampaignStatus.RUNNING, CampaignStatus.PAUSED)
CAMPAIGN_ENDED = {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED}
BATCH_ENDED = {BatchStatus.COMMITTED, BatchStatus.FAILED}


@dataclass(frozen=True)
class Reading:
    """One job's counters now."""

    source: str
    source_id: str
    owner_id: int
    channel: str
    sent: int
    failed: int
    rows: int
    final: bool
    started_at: datetime | None


def _readings(since: datetime, marked: dict[str, list[str]]) -> list[Reading]:
    """Jobs running now, jobs that ended since the last run, and jobs the last run saw running:
    the only ones whose counters can have grown. All three tables are small next to messages."""
    readings = []
    campaigns = Campaign.objects.filter(
        Q(status__in=SENDING_CAMPAIGNS) | Q(finished_at__gte=since) | Q(pk__in=marked[ActivitySource.CAMPAIGN])
    ).values_list("pk", "owner_id", "channel", "sent_count", "failed_count", "status", "started_at")
    for pk, owner_id, channel, sent, failed, status, started in campaigns:
        readings.append(Reading(ActivitySource.CAMPAIGN, str(pk), owner_id, channel, sent, failed, 0,
                                status in CAMPAIGN_ENDED, started))
    batches = MessageBatch.objects.filter(
        Q(status__in=(BatchStatus.PENDING, BatchStatus.PROCESSING)) | Q(finished_at__gte=since)
        | Q(pk__in=marked[ActivitySource.BATCH])
    ).values_list("pk", "owner_id", "sent_count", "failed_count", "status", "started_at")
    for pk, owner_id, sent, failed, status, started in batches:
        readings.append(Reading(ActivitySource.BATCH, str(pk), owner_id, "", sent, failed, 0, status in BATCH_ENDED,
                                started))
    jobs = ImportJob.objects.filter(
        Q(status__in=ACTIVE_IMPORT_STATUSES) | Q(finished_at__gte=since) | Q(pk__in=marked[ActivitySource.IMPORT])
    ).values_list("pk", "owner_id", "processed_rows", "status", "started_at")
    for pk, owner_id, rows, status, started in jobs:
        readings.append(Reading(ActivitySource.IMPORT, str(pk), owner_id, "", 0, 0, rows,
                                status not in ACTIVE_IMPORT_STATUSES, started))
    return readings


def _baseline(reading: Reading, mark: ActivityMark | None, since: datetime) -> tuple[int, int, int]:
    """What the counters were at the last run. A job never seen before counts from zero if it
    started since then; one that started earlier (the first run after install, or a retried job
    whose mark was pruned) counts from now, so old work is never counted again."""
    if mark is not None:
        return mark.sent, mark.failed, mark.rows
    if reading.started_at is None or reading.started_at >= since:
        return 0, 0, 0
    return reading.sent, reading.failed, reading.rows


def spread(amount: int, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """Share `amount` over the minutes of [start, end) by overlap, in whole units that add up
    to `amount` (largest remainders first)."""
    start = max(start, end - MAX_SPREAD)
    if amount <= 0:
        return []
    total = (end - start).total_seconds()
    minute = start.replace(second=0, microsecond=0)
    if total <= 0:
        return [(minute, amount)]
    shares = []
    while minute < end:
        overlap = (min(minute + timedelta(minutes=1), end) - max(minute, start)).total_seconds()
        shares.append((minute, amount * overlap / total))
        minute += timedelta(minutes=1)
    whole = [int(share) for _, share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: shares[i][1] - whole[i], reverse=True)
    for i in by_remainder[: amount - sum(whole)]:
        whole[i] += 1
    return [(shares[i][0], whole[i]) for i in range(len(shares)) if whole[i]]


def _add_minutes(rows: dict[tuple[datetime, int, str, str], int]) -> None:
    """Add to the minutes in one statement (PostgreSQL and SQLite share the upsert syntax)."""
    if not rows:
        return
    table = ActivityMinute._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    params = [item for (minute, owner, kind, channel), count in rows.items() for item in (minute, owner, kind, channel, count)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (minute, owner_id, kind, channel, count) VALUES {values} "
            f"ON CONFLICT (minute, owner_id, kind, channel) DO UPDATE SET count = {table}.count + excluded.count",
            params,
        )


@transaction.atomic
def activity_rollup(*, now: datetime | None = None) -> dict:
    """Record the growth of every job's counters since the last run. Returns what it added."""
    now = now or timezone.now()
    state, _ = RollupState.objects.select_for_update().get_or_create(pk=1)
    since = state.ran_at or now
    added = {kind: 0 for kind in ActivityKind.values}
    if now <= since and state.ran_at is not None:
        return added  # already ran for this instant (or the clock stepped back)
    marked: dict[str, list[str]] = {source: [] for source in ActivitySource.values}
    for source, source_id in ActivityMark.objects.filter(final=False).values_list("source", "source_id"):
        marked[source].append(source_id)
    readings = _readings(since, marked)
    marks = {(m.source, m.source_id): m for m in ActivityMark.objects.filter(
        source_id__in=[r.source_id for r in readings])}
    minutes: dict[tuple[datetime, int, str, str], int] = {}
    for reading in readings:
        base = _baseline(reading, marks.get((reading.source, reading.source_id)), since)
        for kind, channel, grown in (
            (ActivityKind.SENT, reading.channel, reading.sent - base[0]),
            (ActivityKind.FAILED, reading.channel, reading.failed - base[1]),
            (ActivityKind.IMPORT_ROWS, "", reading.rows - base[2]),
        ):
            # A counter that went down (failures requeued by a retry, an exact recount) records
            # nothing; the mark follows it down so later growth is counted from there.
            for minute, count in spread(grown, since, now):
                key = (minute, reading.owner_id, kind, channel)
                minutes[key] = minutes.get(key, 0) + count
                added[kind] += count
    _add_minutes(minutes)
    ActivityMark.objects.bulk_create(
        [ActivityMark(source=r.source, source_id=r.source_id, owner_id=r.owner_id, channel=r.channel, sent=r.sent,
                      failed=r.failed, rows=r.rows, final=r.final, observed_at=now) for r in readings],
        update_conflicts=True, unique_fields=["source", "source_id"],
        update_fields=["owner", "channel", "sent", "failed", "rows", "final", "observed_at"],
    )
    # Marks of jobs not read for a week (ended, or deleted): see _baseline for why that is safe.
    ActivityMark.objects.filter(observed_at__lt=now - MARKS_KEPT).delete()
    ActivityMinute.objects.filter(minute__lt=now - MINUTES_KEPT).delete()
    state.ran_at = now
    state.save(update_fields=["ran_at"])
    return {**added, "jobs_read": len(readings)}
