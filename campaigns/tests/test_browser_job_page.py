"""A campaign's live page in Chromium while a real qcluster sends it: the figures move together
without a reload, and the Pause / Resume buttons drive it to completion."""


from campaigns import services
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from campaigns.tests.buckets import rate_limit_row
from inboxerr.actors import Actor
from inboxerr.tests.browser import BROWSER_TEST, assert_not_clipped, screenshot, wait_for_js
from inboxerr.tests.processes import wait_for
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = BROWSER_TEST


def _sending_campaign(owner, recipients: int) -> Campaign:
    rate_limit_row(name="email", rate=2, burst=1, enabled=True)
    lst = SubscriberListFactory(owner=owner, name="Members")
    for i in range(recipients):
        SubscriberFactory(list=lst, email=f"member{i}@example.com", name=f"Member {i}")
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="Autumn news", channel="email",
                                        subject="News for {{ name }}", message_content="Hello {{ name }}",
                                        list_names=["Members"])
    return services.campaign_start(actor=actor, campaign=campaign)


def _press(page, name: str) -> None:
    """Click a panel button and wait for the page it leads back to."""
    with page.expect_navigation():
        page.get_by_role("button", name=name).click()


def _shown(page, field: str) -> str:
    return page.locator(f'#job-panel [data-result="{field}"]').inner_text()


def test_a_campaign_page_follows_the_send_live_and_its_buttons_pause_and_resume_it(admin_page, live_stack, staff_user):
    campaign = _sending_campaign(staff_user, recipients=20)
    page = admin_page
    page.goto(live_stack.url(f"/admin/campaigns/campaign/{campaign.pk}/change/"))
    status = page.locator('#job-panel [data-field="status"]')

    # The worker fans out and sends at 2/s: the page shows it running and counting, unreloaded;
    # the operator pauses it at once.
    wait_for_js(page, "document.querySelector('#job-panel')?.dataset.status === 'running'", timeout=30_000)
    wait_for_js(page, "Number(document.querySelector('[data-result=sent]')?.textContent) >= 1", timeout=30_000)
    _press(page, "Pause")
    assert status.inner_text() == "Paused"
    assert page.get_by_role("button", name="Resume").is_visible()
    assert not page.get_by_role("button", name="Pause").is_visible()
    assert page.locator('#job-panel [data-field="live"]').is_visible()  # paused is not finished
    assert _shown(page, "total") == "20"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    sent_when_paused = Message.objects.filter(campaign=campaign, status=MessageStatus.SENT).count()
    assert 1 <= sent_when_paused < 20
    assert_not_clipped(page)
    screenshot(page, "campaign-paused")

    _press(page, "Resume")
    wait_for_js(page, "document.querySelector('#job-panel')?.dataset.status === 'completed'", timeout=60_000)
    assert status.inner_text() == "Completed"
    assert (_shown(page, "sent"), _shown(page, "failed"), _shown(page, "pending")) == ("20", "0", "0")
    assert not page.locator('#job-panel [data-field="live"]').is_visible()
    assert not page.get_by_role("button", name="Retry the failed messages").is_visible()  # none failed
    assert page.locator('#job-panel progress').get_attribute("value") == "100"
    assert wait_for(lambda: Message.objects.filter(campaign=campaign, status=MessageStatus.SENT).count() == 20,
                    timeout=5, what="20 sent messages")
    screenshot(page, "campaign-completed")
