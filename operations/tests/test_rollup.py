"""The activity rollup: growth of each job's counters lands in the minutes it happened in, per
owner and channel, and is never counted twice."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django_q.models import Schedule

from campaigns.models import BatchStatus, Campaign, CampaignStatus, MessageBatch
from imports.models import ImportJob, ImportStatus
from operations.models import ActivityKind, ActivityMinute
from operations.services import activity_rollup, spread

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=dt_timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def minutes_of(kind: str, **filters) -> dict[str, int]:
    rows = ActivityMinute.objects.filter(kind=kind, **filters).order_by("minute")
    return {f"{row.minute:%H:%M}": row.count for row in rows}


def set_counts(obj, **counts) -> None:
    type(obj).objects.filter(pk=obj.pk).update(**counts)


@pytest.fixture
def campaign(owner):
    return Campaign.objects.create(owner=owner, name="Spring", channel="email", status=CampaignStatus.RUNNING,
                                   started_at=at(-30), total_count=1000)


def test_rollup_counts_sends_into_the_minutes_they_happened_in(campaign):
    activity_rollup(now=at(0))  # first run: what was sent before it is history, not counted
    set_counts(campaign, sent_count=60, failed_count=2)
    activity_rollup(now=at(1))
    set_counts(campaign, sent_count=90)
    activity_rollup(now=at(1.5))
    set_counts(campaign, sent_count=150)
    activity_rollup(now=at(2.5))  # 60 more over 10:01:30-10:02:30: half in each minute
    assert minutes_of(ActivityKind.SENT, channel="email", owner=campaign.owner) == {"10:00": 60, "10:01": 60, "10:02": 30}
    assert minutes_of(ActivityKind.FAILED) == {"10:00": 2}


def test_running_the_rollup_twice_counts_nothing_twice(campaign):
    activity_rollup(now=at(0))
    set_counts(campaign, sent_count=40)
    first = activity_rollup(now=at(1))
    again = activity_rollup(now=at(1))
    later = activity_rollup(now=at(2))
    assert first["sent"] == 40
    assert again["sent"] == 0 and later["sent"] == 0
    assert minutes_of(ActivityKind.SENT) == {"10:00": 40}


def test_a_campaign_that_started_and_finished_between_two_runs_is_counted(owner):
    activity_rollup(now=at(0))
    Campaign.objects.create(owner=owner, name="Flash", channel="sms", status=CampaignStatus.COMPLETED,
                            started_at=at(0.2), finished_at=at(0.5), total_count=7, sent_count=7)
    activity_rollup(now=at(1))
    assert minutes_of(ActivityKind.SENT, channel="sms") == {"10:00": 7}


def test_work_done_before_the_first_run_is_not_counted(owner, campaign):
    set_counts(campaign, sent_count=500)
    Campaign.objects.create(owner=owner, name="Old", status=CampaignStatus.COMPLETED, started_at=at(-120),
                            finished_at=at(-100), sent_count=10_000)
    added = activity_rollup(now=at(0))
    assert added["sent"] == 0
    set_counts(campaign, sent_count=510)
    assert activity_rollup(now=at(1))["sent"] == 10


def test_import_rows_and_batch_items_are_counted_per_owner(owner, outsider):
    activity_rollup(now=at(0))
    job = ImportJob.objects.create(owner=owner, list_name="L", status=ImportStatus.PROCESSING, started_at=at(0.1))
    batch = MessageBatch.objects.create(batch_id="0123456789abcdef", owner=outsider, sequence=1,
                                        status=BatchStatus.PROCESSING, total_items=50, started_at=at(0.1))
    set_counts(job, processed_rows=12_000)
    set_counts(batch, sent_count=30, failed_count=1)
    activity_rollup(now=at(1))
    set_counts(job, processed_rows=20_000, status=ImportStatus.COMPLETED, finished_at=at(1.5))
    activity_rollup(now=at(2))
    assert minutes_of(ActivityKind.IMPORT_ROWS, owner=owner) == {"10:00": 12_000, "10:01": 8_000}
    assert minutes_of(ActivityKind.SENT, owner=outsider, channel="") == {"10:00": 30}
    assert minutes_of(ActivityKind.FAILED, owner=outsider) == {"10:00": 1}
    assert not ActivityMinute.objects.filter(owner=owner).exclude(kind=ActivityKind.IMPORT_ROWS).exists()
    activity_rollup(now=at(3))  # the ended job is read once more, and adds nothing
    assert minutes_of(ActivityKind.IMPORT_ROWS, owner=owner) == {"10:00": 12_000, "10:01": 8_000}


def test_a_counter_that_goes_down_records_nothing_and_counts_on_from_there(campaign):
    activity_rollup(now=at(0))
    set_counts(campaign, failed_count=20)
    activity_rollup(now=at(1))
    set_counts(campaign, failed_count=0)  # a retry requeued the failures
    activity_rollup(now=at(2))
    set_counts(campaign, failed_count=3)
    activity_rollup(now=at(3))
    assert minutes_of(ActivityKind.FAILED) == {"10:00": 20, "10:02": 3}


def test_a_late_run_spreads_its_growth_over_the_minutes_it_missed():
    shares = spread(100, at(0), at(4))
    assert [count for _, count in shares] == [25, 25, 25, 25]
    assert sum(count for _, count in spread(7, at(0.5), at(3.25))) == 7
    assert [m for m, _ in spread(10, at(-600), at(0))][0] == at(-60)  # never more than an hour back


def test_the_rollup_is_scheduled_every_minute(db):
    schedule = Schedule.objects.get(name="operations.rollup")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("operations.tasks.rollup", "I", 1)
