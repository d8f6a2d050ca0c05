"""The dashboard in Chromium after an import and a campaign run by the real worker: it refreshes
itself, and its figures are the work that was done."""

from django_q.tasks import async_task

from campaigns import services
from campaigns.models import Campaign, CampaignStatus
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import import_file, write
from inboxerr.actors import Actor
from inboxerr.models import WorkerHeartbeat
from inboxerr.tests.browser import BROWSER_TEST, assert_not_clipped, screenshot, wait_for_js
from inboxerr.tests.processes import wait_for
from operations.services import activity_rollup

pytestmark = BROWSER_TEST


def _tile(page, name: str) -> str:
    return page.locator(f"#ops-{name} .ops-figure").inner_text().strip()


def test_the_dashboard_shows_the_import_and_the_campaign_the_worker_ran(admin_page, live_stack, staff_user, tmp_path):
    activity_rollup()  # the schedule's first run: from here on, work is counted
    # The worker's heartbeat task, handed to the real worker as its schedule would (the schedules
    # went with the previous test's flush).
    async_task("inboxerr.tasks.heartbeat")
    wait_for(lambda: WorkerHeartbeat.objects.exists(), timeout=30, what="the worker's heartbeat")
    page = admin_page
    page.goto(live_stack.url("/admin/"))
    assert _tile(page, "subscribers") == "0" and _tile(page, "sent-hour") == "0"

    # The worker imports 30 rows (2 of them invalid), then sends the campaign to the 28 stored.
    csv = write(tmp_path, "email,name\n" + "".join(f"reader{i}@example.com,Reader {i}\n" for i in range(28))
                + "not-an-address,Bad\nalso bad,Worse\n", name="readers.csv")
    job = import_file(staff_user, csv, list_name="Readers")
    wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == ImportStatus.PARTIALLY_COMPLETED, timeout=60,
             what="the import")
    actor = Actor(user=staff_user, source="api")
    campaign = services.campaign_create(actor=actor, owner=staff_user, name="Readers' digest", channel="email",
                                        subject="Hello {{ name }}", message_content="News", list_names=["Readers"])
    services.campaign_start(actor=actor, campaign=campaign)
    wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED, timeout=60,
             what="the campaign")
    activity_rollup()  # the schedule's next run

    # No reload: the page fetches its figures again by itself.
    wait_for_js(page, "document.querySelector('#ops-sent-hour .ops-figure')?.textContent.trim() === '28'",
                timeout=20_000)
    assert (_tile(page, "lists"), _tile(page, "subscribers"), _tile(page, "sent-day"), _tile(page, "failed-hour"),
            _tile(page, "rows-day")) == ("1", "28", "28", "0", "30")
    assert _tile(page, "worker-state") == "up"
    assert "28 in total" in page.locator("#ops-chart-desc").text_content()
    assert_not_clipped(page)
    screenshot(page, "dashboard")
