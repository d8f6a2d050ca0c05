"""The admin index shows the operations dashboard: figures scoped to the viewer, links into the
admin pages, and a page that renders with nothing in the database."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import BatchStatus, Campaign, CampaignStatus, Message, MessageBatch, MessageStatus
from imports.models import ImportJob, ImportStatus
from inboxerr.models import WorkerHeartbeat
from operations.models import ActivityKind, ActivityMinute
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

INDEX = "/admin/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _tile(html: str, name: str) -> str:
    match = re.search(rf'id="ops-{name}"><span class="ops-figure">([^<]*)<', html)
    assert match, f"tile {name} not on the page"
    return match.group(1)


@pytest.fixture
def scene(owner, outsider):
    """The owner: one list of 3, a running import, a sending campaign (3 queued, 5 sent, 2 failed),
    a failed batch, sends in the rollup; the outsider: a list of 2 and a campaign of their own."""
    now = timezone.now()
    owned = SubscriberListFactory(owner=owner, name="Newsletter")
    for _ in range(3):
        SubscriberFactory(list=owned)
    theirs = SubscriberListFactory(owner=outsider, name="Theirs")
    for _ in range(2):
        SubscriberFactory(list=theirs)
    job = ImportJob.objects.create(
        owner=owner, list=owned, list_name=owned.name, filename="spring.csv", status=ImportStatus.PROCESSING,
        total_rows=1000, processed_rows=500, progress=50.0, size_bytes=100_000, checkpoint={"offset": 50_000},
        started_at=now - timedelta(seconds=50), heartbeat_at=now,
    )
    campaign = Campaign.objects.create(
        owner=owner, name="Spring sale", channel="email", status=CampaignStatus.RUNNING,
        started_at=now - timedelta(minutes=7), total_count=10, sent_count=5, failed_count=2,
    )
    Message.objects.bulk_create(
        [Message(campaign=campaign, channel="email", recipient=f"q{i}@example.com") for i in range(3)]
        + [Message(campaign=campaign, channel="email", recipient=f"s{i}@example.com", status=MessageStatus.SENT,
                   sent_at=now) for i in range(5)]
        + [Message(campaign=campaign, channel="email", recipient=f"f{i}@example.com", status=MessageStatus.FAILED,
                   last_error="550 mailbox full") for i in range(2)]
    )
    batch = MessageBatch.objects.create(
        batch_id="00aa11bb22cc33dd", owner=owner, sequence=1, status=BatchStatus.FAILED, total_items=4,
        sent_count=3, failed_count=1, status_reason="1 of 4 items failed", finished_at=now,
    )
    other = Campaign.objects.create(owner=outsider, name="Outsider promo", channel="sms", status=CampaignStatus.RUNNING,
                                    started_at=now, total_count=40, failed_count=1)
    minute = now.replace(second=0, microsecond=0)
    ActivityMinute.objects.bulk_create([
        ActivityMinute(minute=minute - timedelta(minutes=5), owner=owner, kind=ActivityKind.SENT, channel="email", count=5),
        ActivityMinute(minute=minute - timedelta(hours=3), owner=owner, kind=ActivityKind.SENT, channel="email", count=100),
        ActivityMinute(minute=minute - timedelta(minutes=5), owner=owner, kind=ActivityKind.FAILED, channel="email", count=2),
        ActivityMinute(minute=minute - timedelta(minutes=2), owner=owner, kind=ActivityKind.IMPORT_ROWS, count=500),
        ActivityMinute(minute=minute - timedelta(minutes=5), owner=outsider, kind=ActivityKind.SENT, channel="sms", count=40),
        ActivityMinute(minute=minute - timedelta(days=2), owner=owner, kind=ActivityKind.SENT, channel="email", count=999),
    ])
    WorkerHeartbeat.objects.create(name="qcluster", beat_at=now - timedelta(minutes=10), hostname="worker-1", pid=42)
    return {"job": job, "campaign": campaign, "batch": batch, "other": other}


def test_operator_sees_the_figures_of_what_they_own(owner, scene):
    response = _client(owner).get(INDEX)
    html = response.content.decode()
    assert response.status_code == 200
    assert _tile(html, "lists") == "1"
    assert _tile(html, "subscribers") == "3"
    assert _tile(html, "sent-hour") == "5"
    assert _tile(html, "sent-day") == "105"  # the minute of two days ago is outside the day
    assert _tile(html, "failed-hour") == "2"
    assert _tile(html, "rows-day") == "500"
    assert _tile(html, "queue-email") == "3"  # 10 - 5 sent - 2 failed
    assert 'id="ops-queue-sms"' not in html
    imports = response.context["dashboard"]["imports"]
    assert [row["job"].pk for row in imports] == [scene["job"].pk]
    assert imports[0]["rows_per_second"] == pytest.approx(10, rel=0.1)
    assert imports[0]["eta_seconds"] == pytest.approx(50, rel=0.1)  # half the file in 50 s
    campaign_row = response.context["dashboard"]["campaigns"][0]
    assert campaign_row["progress"] == 70.0
    assert campaign_row["per_minute"] == pytest.approx(1.0, rel=0.05)  # 7 outcomes in 7 minutes
    assert campaign_row["eta_seconds"] == pytest.approx(180, rel=0.05)  # 3 left at 1 a minute
    assert reverse("admin:imports_importjob_change", args=[scene["job"].pk]) in html
    assert reverse("admin:campaigns_campaign_change", args=[scene["campaign"].pk]) in html
    assert reverse("admin:campaigns_messagebatch_change", args=[scene["batch"].pk]) in html
    assert f"?campaign__id__exact={scene['campaign'].pk}&amp;status__exact=failed" in html
    assert "550 mailbox full" in html
    assert "1 of 4 items failed" in html
    assert "Outsider promo" not in html


def test_a_stale_heartbeat_is_shown_as_stale_with_its_age(owner, scene):
    response = _client(owner).get(INDEX)
    workers = response.context["dashboard"]["workers"]
    assert workers["ok"] is False
    assert [(row["beat"].name, row["fresh"]) for row in workers["beats"]] == [("qcluster", False)]
    assert workers["beats"][0]["age_seconds"] == pytest.approx(600, abs=30)
    html = response.content.decode()
    assert "stale" in html and "worker-1" in html and re.search(r">10 min \d+ s<", html)
    assert 'id="ops-worker-state"><span class="ops-figure"><span class="ops-bad">down</span>' in html


def test_a_fresh_heartbeat_shows_the_workers_up(owner):
    WorkerHeartbeat.objects.create(name="qcluster", beat_at=timezone.now() - timedelta(seconds=20), hostname="w", pid=1)
    html = _client(owner).get(INDEX).content.decode()
    assert 'id="ops-worker-state"><span class="ops-figure"><span class="ops-ok">up</span>' in html
    assert "fresh" in html


def test_outsider_sees_none_of_the_owners_items(outsider, scene):
    response = _client(outsider).get(INDEX)
    html = response.content.decode()
    assert _tile(html, "lists") == "1"
    assert _tile(html, "subscribers") == "2"
    assert _tile(html, "sent-hour") == "40"
    assert _tile(html, "failed-day") == "0"
    assert _tile(html, "queue-sms") == "39"
    for hidden in ("Spring sale", "spring.csv", "00aa11bb22cc33dd", "550 mailbox full", str(scene["job"].pk)):
        assert hidden not in html
    assert [row["campaign"].name for row in response.context["dashboard"]["campaigns"]] == ["Outsider promo"]
    assert [f.name for f in response.context["dashboard"]["failures"]] == ["Outsider promo"]


def test_superuser_sees_every_owners_figures(superuser, scene):
    response = _client(superuser).get(INDEX)
    html = response.content.decode()
    assert _tile(html, "lists") == "2"
    assert _tile(html, "subscribers") == "5"
    assert _tile(html, "sent-hour") == "45"
    assert _tile(html, "queue-email") == "3"
    assert _tile(html, "queue-sms") == "39"
    assert "Spring sale" in html and "Outsider promo" in html
    assert {f.kind for f in response.context["dashboard"]["failures"]} == {"campaign", "batch"}


def test_the_chart_plots_sends_and_import_rows_per_minute(owner, scene):
    response = _client(owner).get(INDEX)
    series = response.context["dashboard"]["series"]
    assert len(series["sent"]) == len(series["import_rows"]) == 1440
    assert series["sent"][-6] == 5 and series["sent"][-181] == 100 and sum(series["sent"]) == 105
    assert series["import_rows"][-3] == 500
    chart = response.context["chart"]
    assert chart["sends"].peak == 100 and chart["imports"].peak == 500 and not chart["empty"]
    html = response.content.decode()
    assert '<svg viewBox="0 0 940 260" role="img"' in html
    assert "peak 100, 105 in total" in html  # the accessible description


def test_the_index_renders_on_an_empty_database_with_the_app_list_below(superuser):
    response = _client(superuser).get(INDEX)
    html = response.content.decode()
    assert response.status_code == 200
    assert _tile(html, "subscribers") == "0"
    assert _tile(html, "sent-day") == "0"
    assert _tile(html, "queue-batch") == "0"
    assert "No activity in the last 24 hours." in html
    assert "No import is running." in html and "No campaign is sending." in html and "No failures." in html
    assert "No worker heartbeat yet" in html
    assert html.index('id="operations-dashboard"') < html.index("app-subscribers")


def test_anonymous_caller_is_sent_to_the_login_page():
    response = Client().get(INDEX)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_dashboard_does_not_count_subscribers_or_messages(superuser, scene):
    # The index is a fixed number of small queries, whatever the table sizes; none counts
    # subscribers or messages.
    client = _client(superuser)
    with CaptureQueriesContext(connection) as queries:
        client.get(INDEX)
    counted = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()
               and ('"subscribers_subscriber"' in q["sql"] or '"campaigns_message"' in q["sql"])]
    assert counted == []
    assert len(queries.captured_queries) < 40
