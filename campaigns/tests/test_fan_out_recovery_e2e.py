"""A campaign's fan-out in a real django-q2 worker (`manage.py qcluster`) whose process is killed
(SIGKILL, as the out-of-memory killer does) after it inserted the messages and before it
committed them: the campaign is not left `starting`. The minute tick finds it and queues the
fan-out again, which writes exactly one message per recipient; a fan-out that kills every worker
is failed with the reason after CAMPAIGN_MAX_FAN_OUT_ATTEMPTS runs.

The kill comes from imports/tests/crashing_worker/sitecustomize.py, which Python loads at
start-up only in the qcluster this test starts with that folder on its PYTHONPATH."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import Schedule

from campaigns import services, tasks
from campaigns.models import Campaign, CampaignStatus, Message
from inboxerr.actors import Actor
from inboxerr.tests.processes import kill_group, start_qcluster, wait_for
from subscribers.models import Subscriber, SubscriberList

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CRASHING_WORKER = Path(__file__).resolve().parents[2] / "imports" / "tests" / "crashing_worker"
PEOPLE = 2_000


@pytest.fixture
def started(owner) -> Campaign:
    """A campaign to PEOPLE addresses, a quarter of them in both of its lists, started."""
    news, vip = (SubscriberList.objects.create(owner=owner, name=name) for name in ("News", "VIP"))
    Subscriber.objects.bulk_create(
        [Subscriber(list=news, key=f"p{i}@x.io", email=f"p{i}@x.io") for i in range(PEOPLE)]
        + [Subscriber(list=vip, key=f"p{i}@x.io", email=f"p{i}@x.io") for i in range(0, PEOPLE, 4)]
    )
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="Spring", channel="email", subject="Hi",
                                        message_content="Hello", list_names=["News", "VIP"])
    return services.campaign_start(actor=actor, campaign=campaign)


@pytest.fixture
def crashing_cluster(started, tmp_path):
    """One qcluster with one worker, whose worker dies in the campaign's fan-out `deaths` times
    (0: every time). The test runs the minute tick itself: none is scheduled in the cluster."""
    Schedule.objects.all().delete()
    log = tmp_path / "deaths.log"
    log.touch()
    procs = []

    def start(deaths: int):
        procs.append(start_qcluster(
            Q_WORKERS="1", EMAIL_URL="dummymail://", PYTHONPATH=str(CRASHING_WORKER),
            CRASHING_WORKER_CAMPAIGN=str(started.pk), CRASHING_WORKER_LOG=str(log), CRASHING_WORKER_DEATHS=str(deaths),
        ))
        return procs[-1], log

    yield start
    for proc in procs:
        kill_group(proc)


def deaths_in(log: Path) -> int:
    return len(log.read_text().splitlines())


def tick_until_requeued(campaign: Campaign) -> None:
    """Run the tick, as scheduled every minute, until it takes the campaign. The dead run's claim
    is aged here rather than waited for; its row lock lasts until PostgreSQL has seen the
    connection close, and until then the tick leaves the campaign alone."""
    Campaign.objects.filter(pk=campaign.pk).update(fan_out_claimed_at=timezone.now() - timedelta(hours=1))
    wait_for(lambda: tasks.tick()["fan_outs"]["requeued"] == [str(campaign.pk)], timeout=30,
             what="the tick to queue the fan-out again")


def test_a_fan_out_whose_worker_is_killed_is_run_again_by_the_tick_and_writes_each_message_once(
        started, crashing_cluster):
    cluster, deaths = crashing_cluster(deaths=1)

    wait_for(lambda: deaths_in(deaths) == 1, timeout=60, what="the worker to die in the fan-out")
    # Its run was counted before it began; the messages it inserted died with its transaction.
    campaign = Campaign.objects.get(pk=started.pk)
    assert (campaign.status, campaign.started_at, campaign.fan_out_attempts) == (CampaignStatus.STARTING, None, 1)
    assert not Message.objects.filter(campaign=started).exists()

    tick_until_requeued(started)
    campaign = wait_for(lambda: Campaign.objects.filter(pk=started.pk, started_at__isnull=False).first(),
                        timeout=60, what="the fan-out to finish on a new worker")

    assert (campaign.total_count, campaign.skipped_count, campaign.fan_out_attempts) == (PEOPLE, 0, 2)
    recipients = list(Message.objects.filter(campaign=started).values_list("recipient", flat=True))
    assert len(recipients) == len(set(recipients)) == PEOPLE
    assert set(recipients) == {f"p{i}@x.io" for i in range(PEOPLE)}
    # The dispatcher sends them all and the tick completes the campaign.
    campaign = wait_for(lambda: tasks.tick() and Campaign.objects.filter(
        pk=started.pk, status=CampaignStatus.COMPLETED).first(), timeout=60, what="the campaign to complete")
    assert (campaign.sent_count, campaign.failed_count, campaign.status_reason) == (PEOPLE, 0, "")
    assert deaths_in(deaths) == 1
    assert cluster.poll() is None  # the cluster lived on, replacing its dead worker


def test_a_fan_out_that_kills_every_worker_is_failed_with_the_reason(started, crashing_cluster, settings):
    settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS = 2  # read by the tick, which runs here
    _, deaths = crashing_cluster(deaths=0)

    wait_for(lambda: deaths_in(deaths) == 1, timeout=60, what="the first death")
    tick_until_requeued(started)
    wait_for(lambda: deaths_in(deaths) == 2, timeout=60, what="the second death")
    Campaign.objects.filter(pk=started.pk).update(fan_out_claimed_at=timezone.now() - timedelta(hours=1))
    wait_for(lambda: tasks.tick()["fan_outs"]["failed"] == [str(started.pk)], timeout=30,
             what="the tick to fail the campaign")

    campaign = Campaign.objects.get(pk=started.pk)
    assert (campaign.status, campaign.fan_out_attempts) == (CampaignStatus.FAILED, 2)
    assert campaign.status_reason.startswith(
        "Worker crashed 2 times while fanning out this campaign's messages; last error: the worker stopped without "
        "finishing (killed, out of memory or restarted)"), campaign.status_reason
    assert not Message.objects.filter(campaign=started).exists()
    assert tasks.tick()["fan_outs"] == {"requeued": [], "failed": []}  # handed out no more
    assert deaths_in(deaths) == 2
