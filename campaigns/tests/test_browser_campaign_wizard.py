"""The campaign wizard in a real browser against a real server and qcluster: channel, audience,
message, dry run, test send, confirmation, start; then pause and resume from the change list while
the worker sends at a rate-limited pace, until the campaign completes."""

import pytest
from playwright.sync_api import expect

from audit.models import AuditLog
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from campaigns.tests.buckets import rate_limit_row
from inboxerr.tests.browser import BROWSER_TEST, assert_not_clipped, screenshot
from inboxerr.tests.processes import wait_for
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory, SuppressionFactory

pytestmark = BROWSER_TEST

# One message per claim: a dispatcher run then holds at most one message when the campaign is
# paused (a claimed batch is sent whatever happens to its campaign meanwhile).
LIVE_STACK_ENV = {"DISPATCH_BATCH_SIZE": "1"}
RATE = 3.0  # sends per second: 19 messages take about 6 s, long enough to pause in between


@pytest.fixture
def audience(staff_user):
    news = SubscriberListFactory(owner=staff_user, name="Newsletter")
    for number in range(20):
        SubscriberFactory(list=news, email=f"reader{number:02}@example.com", name=f"Reader {number}",
                          custom_fields={"code": f"C{number}"})
    SuppressionFactory(owner=staff_user, channel="email", address="reader07@example.com")
    rate_limit_row(name="email", rate=RATE, burst=1)
    return news


def _shot(page, name: str) -> None:
    assert_not_clipped(page)
    screenshot(page, name)


def _campaign_action(page, live_stack, campaign: Campaign, action: str) -> None:
    page.goto(live_stack.url("/admin/campaigns/campaign/"))
    page.locator(f'input[name="_selected_action"][value="{campaign.pk}"]').check()
    page.locator("select[name=action]").select_option(label=action)
    page.get_by_role("button", name="Go").click()


def _sent(campaign: Campaign) -> int:
    return Message.objects.filter(campaign=campaign, status=MessageStatus.SENT).count()


def test_the_campaign_wizard_from_channel_to_completion(admin_page, live_stack, audience):
    page = admin_page
    page.goto(live_stack.url("/admin/campaigns/campaign/"))
    page.get_by_role("link", name="Add campaign").click()

    # 1. Channel, from the keyboard: type the name, arrow to the channel, Enter submits.
    page.get_by_label("Campaign name").fill("Spring newsletter")
    assert page.get_by_label("Email").is_checked()
    _shot(page, "campaign-1-channel")
    page.get_by_label("Campaign name").press("Enter")

    # 2. Audience: Space ticks the focused list.
    page.wait_for_url("**/wizard/audience/")
    checkbox = page.get_by_label("Newsletter (20 subscribers)")
    checkbox.focus()
    page.keyboard.press("Space")
    assert checkbox.is_checked()
    _shot(page, "campaign-2-audience")
    page.get_by_role("button", name="Next: message").click()

    # 3. Message: a merge field the list lacks is refused, naming it.
    page.wait_for_url("**/wizard/message/")
    page.get_by_label("Subject").fill("Spring news for {{ name }}")
    page.get_by_label("Message").fill("Hello {{ name }}, your code is {{ code }} and {{ coupon }}.")
    page.get_by_role("button", name="Save the draft and run a dry run").click()
    expect(page.get_by_text("Merge fields not found in the audience: coupon")).to_be_visible()
    assert not Campaign.objects.exists()
    page.get_by_label("Message").fill("Hello {{ name }}, your code is {{ code }}.")
    _shot(page, "campaign-3-message")
    page.get_by_role("button", name="Save the draft and run a dry run").click()

    # 4. Dry run: 20 subscribers, one suppressed, 19 to send; a preview of the first.
    page.wait_for_url("**/dry-run/")
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.owner_id) == (CampaignStatus.DRAFT, audience.owner_id)
    assert page.locator("#would-queue").inner_text() == "19"
    assert page.get_by_role("row", name="Suppressed").inner_text().split() == ["Suppressed", "1"]
    expect(page.get_by_text("Spring news for Reader 0")).to_be_visible()
    assert page.get_by_label("Text body").inner_text().strip() == "Hello Reader 0, your code is C0."
    _shot(page, "campaign-4-dry-run")
    page.get_by_role("link", name="Next: test send").click()

    # 5. Test send to an address typed in the form.
    page.wait_for_url("**/test-send/")
    page.get_by_label("Send a test to").fill("operator@example.com")
    page.get_by_role("button", name="Send the test").click()
    expect(page.get_by_text("Test sent to operator@example.com.")).to_be_visible()
    assert AuditLog.objects.filter(user_action__contains="Test send of campaign 'Spring newsletter' to operator@example.com").exists()
    _shot(page, "campaign-5-test-send")
    assert not Message.objects.exists()  # a test send is not one of the campaign's messages
    page.get_by_role("link", name="Next: confirm and start").click()

    # 6. Confirmation: the count, the rate limit, the duration; nothing started yet.
    page.wait_for_url("**/start/")
    summary = page.locator("#start-summary tbody tr").inner_text()
    assert "19" in summary and "3 per second on email (burst 1)" in summary and "about 6 s" in summary
    assert page.get_by_label("Start now").is_checked()
    _shot(page, "campaign-6-confirm")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    page.get_by_role("button", name="Yes, start").click()
    page.wait_for_url(f"**/campaign/{campaign.pk}/change/")
    expect(page.get_by_text("Campaign 'Spring newsletter' starting.")).to_be_visible()

    # The worker sends at the rate limit; pause part-way from the change list.
    wait_for(lambda: _sent(campaign) >= 3, timeout=20, what="the first sends")
    _campaign_action(page, live_stack, campaign, "Pause selected campaigns")
    expect(page.get_by_text("Pause: 1 campaign(s).")).to_be_visible()
    wait_for(lambda: Message.objects.filter(campaign=campaign, status=MessageStatus.SENDING).count() == 0,
             timeout=10, what="the sends in flight to finish")
    paused_at = _sent(campaign)
    page.wait_for_timeout(1500)
    assert _sent(campaign) == paused_at < 19, "messages went out while the campaign was paused"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED

    _campaign_action(page, live_stack, campaign, "Resume selected campaigns")
    expect(page.get_by_text("Resume: 1 campaign(s).")).to_be_visible()
    wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED, timeout=30,
             what="the campaign to complete")

    statuses = dict(Message.objects.filter(campaign=campaign).values_list("recipient", "status"))
    assert len(statuses) == 20
    assert statuses.pop("reader07@example.com") == MessageStatus.SKIPPED
    assert set(statuses.values()) == {MessageStatus.SENT}
    campaign.refresh_from_db()
    assert (campaign.total_count, campaign.sent_count, campaign.skipped_count, campaign.failed_count) == (20, 19, 1, 0)
    page.goto(live_stack.url("/admin/campaigns/campaign/"))
    row = page.get_by_role("row", name="Spring newsletter").inner_text()
    assert "Completed" in row and "19" in row


def test_start_from_the_change_list_shows_the_confirmation_first(admin_page, live_stack, audience):
    from campaigns import services
    from inboxerr.actors import Actor

    campaign = services.campaign_create(actor=Actor.system(), owner=audience.owner, name="Autumn", channel="email",
                                        subject="Autumn", message_content="Hello {{ name }}",
                                        list_names=[audience.name])
    page = admin_page
    _campaign_action(page, live_stack, campaign, "Start selected campaigns (after a confirmation of count and pace)")
    summary = page.locator("#start-summary tbody tr").inner_text()
    assert "19" in summary and "about 6 s" in summary
    _shot(page, "campaign-start-confirm-changelist")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and not Message.objects.exists()
    page.get_by_role("link", name="No, take me back").click()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_choosing_a_template_in_the_message_step_shows_what_it_sends(admin_page, live_stack, audience):
    from campaigns import services
    from inboxerr.actors import Actor

    services.template_create(actor=Actor.system(), owner=audience.owner, name="Welcome",
                             subject="Welcome, {{ name }}", body_text="Your code is {{ code }}.")
    page = admin_page
    page.goto(live_stack.url("/admin/campaigns/campaign/wizard/"))
    page.get_by_label("Campaign name").fill("Welcome run")
    page.get_by_label("Campaign name").press("Enter")
    page.wait_for_url("**/wizard/audience/")
    page.get_by_label("Newsletter (20 subscribers)").check()
    page.get_by_role("button", name="Next: message").click()
    page.wait_for_url("**/wizard/message/")
    content = page.get_by_role("region", name="Content of Welcome")
    expect(content).to_be_hidden()
    page.get_by_label("Template").select_option(label="Welcome")
    expect(content).to_be_visible()
    expect(content.get_by_text("Welcome, {{ name }}")).to_be_visible()
    assert content.get_by_label("Its text body").inner_text().strip() == "Your code is {{ code }}."
    _shot(page, "campaign-3-message-template")
    page.get_by_label("Template").select_option(index=0)
    expect(content).to_be_hidden()
