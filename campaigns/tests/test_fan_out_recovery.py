"""A campaign whose fan-out run died (its worker killed, out of memory, the host lost) is found by
the minute tick and its fan-out queued again; once CAMPAIGN_MAX_FAN_OUT_ATTEMPTS runs began and
none finished, it is failed with the reason. A live run holds the campaign's row lock, and the
tick leaves such a campaign alone."""

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_q.models import OrmQ

from audit.models import AuditLog
from campaigns import dispatch, services, tasks
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)

LONG_AGO = timedelta(hours=1)


@pytest.fixture
def started(owner):
    """A campaign to three addresses (one of them in both its lists), started: its fan-out queued."""
    news, vip = SubscriberListFactory(owner=owner, name="News"), SubscriberListFactory(owner=owner, name="VIP")
    for lst, address in ((news, "ann@x.io"), (news, "bob@x.io"), (news, "cy@x.io"), (vip, "ann@x.io")):
        SubscriberFactory(list=lst, email=address)
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="Spring", channel="email", subject="Hi",
                                        message_content="Hello", list_names=["News", "VIP"])
    return services.campaign_start(actor=actor, campaign=campaign)


@pytest.fixture
def refuse_cy():
    """A constraint the database enforces on new messages (as a DBA's constraint or trigger
    would), refusing one recipient: the fan-out's INSERT fails and its transaction rolls back."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE campaigns_message ADD CONSTRAINT no_cy CHECK (recipient <> 'cy@x.io') NOT VALID")
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE campaigns_message DROP CONSTRAINT IF EXISTS no_cy")


def queued_fan_outs(campaign: Campaign) -> int:
    return sum(1 for q in OrmQ.objects.all()
               if q.task["func"] == "campaigns.tasks.fan_out" and q.task["args"][0] == str(campaign.pk))


def died(campaign: Campaign, *, attempts: int, ago: timedelta = LONG_AGO) -> None:
    """As a run leaves the campaign when its worker dies mid-fan-out: counted, nothing written."""
    Campaign.objects.filter(pk=campaign.pk).update(fan_out_attempts=attempts, fan_out_claimed_at=timezone.now() - ago)


class RowLock:
    """Another connection holding the campaign's row lock, as a live fan-out run does for its
    whole transaction."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign_id = campaign.pk
        self.locked, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        try:
            with transaction.atomic():
                Campaign.objects.select_for_update().get(pk=self.campaign_id)
                self.locked.set()
                self.release.wait(30)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        assert self.locked.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(10)


def test_a_run_counts_its_attempt_in_a_transaction_of_its_own(started, refuse_cy):
    with pytest.raises(IntegrityError):
        services.campaign_fan_out(campaign_id=started.pk)

    started.refresh_from_db()
    # The fan-out rolled back whole; its count and what it raised stayed.
    assert (started.status, started.started_at, started.fan_out_attempts) == (CampaignStatus.STARTING, None, 1)
    assert started.fan_out_error.startswith('IntegrityError: new row for relation "campaigns_message" violates check '
                                            'constraint "no_cy"'), started.fan_out_error
    assert not Message.objects.filter(campaign=started).exists()


def test_a_run_that_finds_the_fan_out_done_counts_nothing(started):
    services.campaign_fan_out(campaign_id=started.pk)
    services.campaign_fan_out(campaign_id=started.pk)  # a duplicate of the task, run later

    started.refresh_from_db()
    assert (started.status, started.fan_out_attempts, started.total_count) == (CampaignStatus.RUNNING, 1, 3)
    assert Message.objects.filter(campaign=started).count() == 3


def test_a_dead_run_with_attempts_left_is_queued_again_once(started):
    died(started, attempts=1)
    before = queued_fan_outs(started)

    result = services.campaigns_fan_out_recover()

    assert result == {"requeued": [str(started.pk)], "failed": []}
    assert queued_fan_outs(started) == before + 1
    started.refresh_from_db()
    assert started.status == CampaignStatus.STARTING and started.fan_out_claimed_at > timezone.now() - LONG_AGO
    entry = AuditLog.objects.filter(entity_type="campaign", entity_id=str(started.pk)).latest("pk")
    assert entry.user_action == "Fan-out of campaign 'Spring' queued again: run 1 of 3 did not finish"
    # Queued again just now: the next tick waits for that run rather than queue another.
    assert services.campaigns_fan_out_recover() == {"requeued": [], "failed": []}
    assert queued_fan_outs(started) == before + 1


def test_a_locked_campaign_is_a_live_run_and_left_alone(started):
    died(started, attempts=1)  # its claim is old: only the lock tells the run is alive
    before = queued_fan_outs(started)

    with RowLock(started):
        assert services.campaigns_fan_out_recover() == {"requeued": [], "failed": []}
    assert queued_fan_outs(started) == before

    # The lock gone (the run's worker died and PostgreSQL rolled its transaction back): requeued.
    assert services.campaigns_fan_out_recover()["requeued"] == [str(started.pk)]


def test_a_locked_campaign_with_every_attempt_used_is_not_parked_while_it_runs(started, settings):
    died(started, attempts=settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS)
    with RowLock(started):
        assert services.campaigns_fan_out_recover() == {"requeued": [], "failed": []}
    assert Campaign.objects.get(pk=started.pk).status == CampaignStatus.STARTING


def test_a_fan_out_just_queued_or_just_taken_up_is_not_queued_twice(started):
    before = queued_fan_outs(started)
    assert services.campaigns_fan_out_recover() == {"requeued": [], "failed": []}  # queued by the start
    died(started, attempts=1, ago=timedelta(seconds=5))  # a run began a moment ago
    assert services.campaigns_fan_out_recover() == {"requeued": [], "failed": []}
    assert queued_fan_outs(started) == before


def test_a_fan_out_no_worker_took_up_is_queued_again(started):
    Campaign.objects.filter(pk=started.pk).update(fan_out_claimed_at=timezone.now() - LONG_AGO)
    assert services.campaigns_fan_out_recover()["requeued"] == [str(started.pk)]
    entry = AuditLog.objects.filter(entity_type="campaign", entity_id=str(started.pk)).latest("pk")
    assert entry.user_action == "Fan-out of campaign 'Spring' queued again: no worker took it up"


def test_every_attempt_used_parks_the_campaign_failed_with_the_reason(started, settings, api):
    settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS = 2
    died(started, attempts=2)
    before = queued_fan_outs(started)

    result = services.campaigns_fan_out_recover()

    assert result == {"requeued": [], "failed": [str(started.pk)]}
    started.refresh_from_db()
    assert (started.status, started.fan_out_attempts) == (CampaignStatus.FAILED, 2)
    assert started.finished_at is not None
    assert started.status_reason.startswith(
        "Worker crashed 2 times while fanning out this campaign's messages; last error: the worker stopped "
        "without finishing (killed, out of memory or restarted); the last run began "), started.status_reason
    assert queued_fan_outs(started) == before  # handed out no more
    entry = AuditLog.objects.filter(entity_type="campaign", entity_id=str(started.pk)).latest("pk")
    assert entry.user_action == f"Campaign 'Spring' failed: {started.status_reason}"
    assert (entry.before, entry.after) == ({"status": "starting"}, {"status": "failed", "fan_out_attempts": 2})
    # Seen through the API, and left alone by the next tick.
    body = api.get(f"/api/v1/campaigns/{started.pk}").json()
    assert (body["status"], body["status_reason"], body["fan_out_attempts"]) == ("failed", started.status_reason, 2)
    assert services.campaigns_fan_out_recover() == {"requeued": [], "failed": []}


def test_the_parked_reason_names_what_the_last_run_raised(started, settings, refuse_cy):
    settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS = 1
    with pytest.raises(IntegrityError):
        services.campaign_fan_out(campaign_id=started.pk)
    Campaign.objects.filter(pk=started.pk).update(fan_out_claimed_at=timezone.now() - LONG_AGO)

    assert services.campaigns_fan_out_recover()["failed"] == [str(started.pk)]

    started.refresh_from_db()
    assert started.status_reason.startswith(
        "Worker crashed once while fanning out this campaign's messages; last error: IntegrityError: new row for "
        'relation "campaigns_message" violates check constraint "no_cy"'), started.status_reason


def test_the_campaign_page_shows_the_reason_and_the_runs(started, settings, owner, client):
    died(started, attempts=settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS)
    services.campaigns_fan_out_recover()
    started.refresh_from_db()
    client.force_login(owner)

    page = client.get(f"/admin/campaigns/campaign/{started.pk}/change/").content.decode()

    assert "Worker crashed 3 times while fanning out this campaign&#x27;s messages" in page
    assert "3 of 3 allowed" in page


@pytest.mark.parametrize("status", [CampaignStatus.RUNNING, CampaignStatus.COMPLETED, CampaignStatus.CANCELLED])
def test_a_campaign_whose_fan_out_finished_or_that_ended_is_untouched(started, status, settings):
    services.campaign_fan_out(campaign_id=started.pk)
    died(started, attempts=settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS)  # as old and as used up as can be
    Campaign.objects.filter(pk=started.pk).update(status=status)
    before = queued_fan_outs(started)

    assert services.campaigns_fan_out_recover() == {"requeued": [], "failed": []}

    started.refresh_from_db()
    assert (started.status, started.status_reason) == (status, "")
    assert queued_fan_outs(started) == before


def test_a_cancelled_campaign_whose_fan_out_never_ran_is_untouched(started, owner):
    services.campaign_cancel(actor=Actor(user=owner, source="api"), campaign=started)
    died(started, attempts=1)
    assert services.campaigns_fan_out_recover() == {"requeued": [], "failed": []}


def test_a_dead_run_then_the_tick_fans_out_once_per_recipient(started, refuse_cy):
    with pytest.raises(IntegrityError):
        tasks.fan_out(str(started.pk))
    with connection.cursor() as cursor:  # the cause fixed
        cursor.execute("ALTER TABLE campaigns_message DROP CONSTRAINT no_cy")
    Campaign.objects.filter(pk=started.pk).update(fan_out_claimed_at=timezone.now() - LONG_AGO)

    assert tasks.tick()["fan_outs"] == {"requeued": [str(started.pk)], "failed": []}
    assert tasks.fan_out(str(started.pk)) == CampaignStatus.RUNNING  # the requeued task, as a worker runs it

    started.refresh_from_db()
    assert (started.total_count, started.fan_out_attempts, started.fan_out_error) == (3, 2, "")
    recipients = list(Message.objects.filter(campaign=started).values_list("recipient", flat=True))
    assert sorted(recipients) == ["ann@x.io", "bob@x.io", "cy@x.io"]


def test_paused_then_resumed_before_its_fan_out_ran_it_still_gets_its_messages(started, owner):
    actor = Actor(user=owner, source="api")
    services.campaign_pause(actor=actor, campaign=started)
    services.campaign_resume(actor=actor, campaign=started)
    Campaign.objects.filter(pk=started.pk).update(fan_out_claimed_at=timezone.now() - LONG_AGO)

    # Running without messages because none are written yet: not complete.
    assert dispatch.finish_campaigns() == []
    assert services.campaigns_fan_out_recover()["requeued"] == [str(started.pk)]
    services.campaign_fan_out(campaign_id=started.pk)

    started.refresh_from_db()
    assert (started.status, started.total_count) == (CampaignStatus.RUNNING, 3)
    assert Message.objects.filter(campaign=started, status=MessageStatus.QUEUED).count() == 3
