"""The admin (templates through the service, campaign actions, messages by status, rate limits)
and the commands start_campaign, requeue_expired_leases and purge_messages."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from audit.models import AuditLog
from campaigns import dispatch, services
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus, MessageTemplate, RateLimit
from campaigns.tests.buckets import rate_limit_row
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)

TEMPLATES = "/admin/campaigns/messagetemplate/"
CAMPAIGNS = "/admin/campaigns/campaign/"
MESSAGES = "/admin/campaigns/message/"


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _campaign(owner, *, list_name: str = "News", emails=("ann@x.io", "bob@x.io"), name: str = "Spring") -> Campaign:
    lst = SubscriberListFactory(owner=owner, name=list_name)
    for email in emails:
        SubscriberFactory(list=lst, email=email, name=email.split("@")[0])
    return services.campaign_create(actor=Actor(user=owner, source="api"), owner=owner, name=name, channel="email",
                                    subject="Hi {{ name }}", message_content="Hello {{ name }}", list_names=[list_name])


def _running(owner, **kwargs) -> Campaign:
    campaign = _campaign(owner, **kwargs)
    services.campaign_start(actor=Actor(user=owner, source="api"), campaign=campaign)
    return services.campaign_fan_out(campaign_id=campaign.pk)


def _template_form(**fields) -> dict:
    return {"name": "Welcome", "channel": "email", "subject": "Hi {{ name }}", "body_text": "Order {{ order_no }}",
            "body_html": "<p>{{ coupon|default:'-' }}</p>", "is_active": "on", **fields}


# --- Templates -----------------------------------------------------------------------------------


def test_a_template_added_in_the_admin_goes_through_the_service(owner):
    response = _login(owner).post(f"{TEMPLATES}add/", _template_form())
    assert response.status_code == 302, response.content[:2000]
    template = MessageTemplate.objects.get()
    assert (template.owner, template.name, template.variables) == (owner, "Welcome", ["coupon", "name", "order_no"])
    row = AuditLog.objects.get(entity_type="template", action="create")
    assert (row.entity_id, row.actor_id, row.metadata["source"]) == (str(template.pk), owner.pk, "admin")


def test_a_template_changed_in_the_admin_is_audited_with_before_and_after(owner):
    template = services.template_create(actor=Actor(user=owner, source="api"), owner=owner, name="Welcome",
                                        body_text="Old {{ a }}", subject="S")
    response = _login(owner).post(f"{TEMPLATES}{template.pk}/change/", _template_form(body_text="New {{ b }}"))
    assert response.status_code == 302, response.content[:2000]
    template.refresh_from_db()
    assert template.body_text == "New {{ b }}" and "b" in template.variables and "a" not in template.variables
    row = AuditLog.objects.get(entity_type="template", action="update")
    assert (row.before["body_text"], row.after["body_text"], row.metadata["source"]) == ("Old {{ a }}", "New {{ b }}", "admin")


def test_a_template_that_does_not_compile_is_shown_as_an_error_in_the_admin(owner):
    client = _login(owner)
    client.raise_request_exception = False
    response = client.post(f"{TEMPLATES}add/", _template_form(body_text="Hi\n{% if x %}"))
    assert response.status_code == 200  # the form again, with the error; not a server error
    assert b"line 2" in response.content and b"Unclosed tag" in response.content
    assert not MessageTemplate.objects.exists()


def test_a_merge_field_left_open_is_an_error_on_its_field_in_the_admin(owner):
    response = _login(owner).post(f"{TEMPLATES}add/", _template_form(subject="Hi {{ first_name"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"subject": ["an opening {{ has no closing }}"]}  # no "subject: " in front of it
    assert not MessageTemplate.objects.exists()


def test_the_template_editor_explains_merge_syntax_and_lists_variables_plainly(owner):
    client = _login(owner)
    page = client.get(f"{TEMPLATES}add/").content.decode()
    assert '<code>{{ name }}</code>' in page and '<code>{{ first_name|default:"there" }}</code>' in page
    assert "name, email, phone and unsubscribe_url" in page and "standard and custom fields" in page
    client.post(f"{TEMPLATES}add/", _template_form())
    template = MessageTemplate.objects.get()
    change = client.get(f"{TEMPLATES}{template.pk}/change/").content.decode()
    assert '<div class="readonly">coupon, name, order_no</div>' in change and "[&quot;coupon&quot;" not in change
    assert "<td class=\"field-variables_display\">coupon, name, order_no</td>" in client.get(TEMPLATES).content.decode()


def test_a_template_change_page_shows_a_rendered_preview(owner):
    template = services.template_create(actor=Actor(user=owner, source="api"), owner=owner, name="Welcome",
                                        subject="Hi {{ name }}", body_text="Order {{ order_no }}")
    response = _login(owner).get(f"{TEMPLATES}{template.pk}/change/")
    assert response.status_code == 200
    assert b"<strong>Hi Sample Person</strong>" in response.content
    assert b"<pre class='wrapped'>Order " in response.content  # with a sample value per field


def test_the_template_preview_escapes_what_the_template_says(owner):
    template = services.template_create(actor=Actor(user=owner, source="api"), owner=owner, name="Welcome",
                                        subject="<i>Hi</i>", body_text="<script>alert('owned')</script>")
    response = _login(owner).get(f"{TEMPLATES}{template.pk}/change/")
    assert response.status_code == 200
    assert b"<script>alert(" not in response.content
    assert b"&lt;script&gt;alert(" in response.content


def test_another_owners_template_is_not_in_the_admin(owner, outsider):
    theirs = services.template_create(actor=Actor(user=outsider, source="api"), owner=outsider, name="Theirs",
                                      body_text="x")
    client = _login(owner)
    assert b"Theirs" not in client.get(TEMPLATES).content
    assert client.get(f"{TEMPLATES}{theirs.pk}/change/").status_code == 302  # "doesn't exist" redirect


# --- Campaign actions ----------------------------------------------------------------------------


def _act(client: Client, action: str, *campaigns: Campaign):
    return client.post(CAMPAIGNS, {"action": action, "_selected_action": [str(c.pk) for c in campaigns]}, follow=True)


def test_campaign_actions_pause_resume_and_cancel_call_the_services(owner, smtp_server):
    campaign = _running(owner)
    client = _login(owner)

    response = _act(client, "campaign_pause_action", campaign)
    assert b"Pause: 1 campaign(s)." in response.content
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert dispatch.dispatch(run_seconds=1) == 0

    _act(client, "campaign_resume_action", campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING

    _act(client, "campaign_cancel_action", campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {MessageStatus.CANCELLED}
    assert smtp_server.messages == []
    changes = list(AuditLog.objects.filter(entity_type="campaign", entity_id=str(campaign.pk), metadata__source="admin")
                   .order_by("id").values_list("before__status", "after__status"))
    assert changes == [("running", "paused"), ("paused", "running"), ("running", "cancelled")]


def test_the_retry_failed_action_requeues_the_failed_messages(owner):
    campaign = _running(owner)
    Message.objects.filter(campaign=campaign, recipient="bob@x.io").update(status="failed", attempts=3, last_error="550")
    Message.objects.filter(campaign=campaign, recipient="ann@x.io").update(status="sent", attempts=1)
    Campaign.objects.filter(pk=campaign.pk).update(status="completed", sent_count=1, failed_count=1)
    response = _act(_login(owner), "campaign_retry_failed_action", campaign)
    assert b"Retry failed messages of: 1 campaign(s)." in response.content
    statuses = dict(Message.objects.filter(campaign=campaign).values_list("recipient", "status"))
    assert statuses == {"ann@x.io": MessageStatus.SENT, "bob@x.io": MessageStatus.QUEUED}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.failed_count) == (CampaignStatus.RUNNING, 0)


def test_a_campaign_action_that_does_not_apply_reports_the_reason(owner):
    campaign = _campaign(owner)
    response = _act(_login(owner), "campaign_resume_action", campaign)
    assert b"Spring: Campaign &#x27;Spring&#x27; is draft; cannot resume it" in response.content
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_the_start_action_asks_first_then_queues_the_fan_out(owner):
    campaign = _campaign(owner)
    client = _login(owner)
    response = _act(client, "campaign_start_action", campaign)
    assert b'value="Yes, start"' in response.content
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    client.post(CAMPAIGNS, {"action": "campaign_start_action", "_selected_action": [str(campaign.pk)],
                            "confirm": "yes", "when": "now"})
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.STARTING


def test_a_campaign_page_shows_the_subject_and_text_of_its_template_and_links_it(owner):
    actor = Actor(user=owner, source="api")
    SubscriberFactory(list=SubscriberListFactory(owner=owner, name="News"), email="ann@x.io", name="Ann")
    template = services.template_create(actor=actor, owner=owner, name="Welcome", subject="Hi {{ name }}",
                                        body_text="Hello <b>{{ name }}</b>")
    campaign = services.campaign_create(actor=actor, owner=owner, name="Spring", channel="email",
                                        template_id=template.pk, list_names=["News"])
    page = _login(owner).get(f"{CAMPAIGNS}{campaign.pk}/change/").content.decode()
    link = f"from template <a href=\"{TEMPLATES}{template.pk}/change/\">'Welcome'</a>"
    assert page.count(link) == 2  # under the subject and under the content
    assert "Hi {{ name }}" in page and "Hello &lt;b&gt;{{ name }}&lt;/b&gt;" in page
    assert f'<a href="{TEMPLATES}{template.pk}/change/">Welcome</a>' in page  # the template field itself


def test_a_campaign_page_shows_its_own_subject_and_content_without_a_template_note(owner):
    campaign = _campaign(owner)
    page = _login(owner).get(f"{CAMPAIGNS}{campaign.pk}/change/").content.decode()
    assert "Hi {{ name }}" in page and "<pre class='campaign-content'>Hello {{ name }}</pre>" in page
    assert "from template" not in page


def test_the_campaign_changelist_shows_progress_and_only_the_owners_campaigns(owner, outsider):
    mine = _running(owner)
    Campaign.objects.filter(pk=mine.pk).update(sent_count=1)
    _campaign(outsider, name="Theirs")
    response = _login(owner).get(CAMPAIGNS)
    assert response.status_code == 200
    assert b'<progress max="100" value="50.0">' in response.content
    assert b"Spring" in response.content and b"Theirs" not in response.content


# --- Messages ------------------------------------------------------------------------------------


def test_the_message_changelist_filters_by_status(owner, outsider):
    campaign = _running(owner)
    Message.objects.filter(campaign=campaign, recipient="bob@x.io").update(status="failed", last_error="550 no such user")
    other = _running(outsider, emails=("carol@x.io",), name="Theirs")
    Message.objects.filter(campaign=other).update(status="failed", last_error="550 gone")
    client = _login(owner)

    response = client.get(MESSAGES, {"status__exact": "failed"})
    assert response.status_code == 200
    assert b"bob@x.io" in response.content and b"550 no such user" in response.content
    assert b"ann@x.io" not in response.content and b"carol@x.io" not in response.content
    everything = client.get(MESSAGES)
    assert b"ann@x.io" in everything.content and b"carol@x.io" not in everything.content


# --- Rate limits ---------------------------------------------------------------------------------


def test_a_superuser_edits_a_rate_limit_in_the_admin(superuser):
    bucket = rate_limit_row(name="email", rate=10, burst=5)
    response = _login(superuser).post(f"/admin/campaigns/ratelimit/{bucket.pk}/change/",
                                      {"name": "email", "rate": "2.5", "burst": "7", "enabled": "on"})
    assert response.status_code == 302
    bucket.refresh_from_db()
    assert (bucket.rate, bucket.burst) == (2.5, 7)


def test_an_operator_cannot_change_the_rate_limit_every_owner_shares(owner):
    bucket = rate_limit_row(name="email", rate=10, burst=5)
    client = _login(owner)
    assert b"Rate limits" not in client.get("/admin/").content
    response = client.post(f"/admin/campaigns/ratelimit/{bucket.pk}/change/",
                           {"name": "email", "rate": "0", "burst": "7", "enabled": "on"})
    assert response.status_code == 403
    bucket.refresh_from_db()
    assert (bucket.rate, bucket.burst) == (10, 5)
    assert client.get("/admin/campaigns/ratelimit/").status_code == 403


def test_a_rate_limit_names_a_channel_bucket_and_a_second_row_for_a_channel_is_a_form_error(superuser):
    # As the migrations leave them: a disabled row for each channel.
    for name in ("email", "sms"):
        rate_limit_row(name=name, rate=10, burst=50, enabled=False)
    client = _login(superuser)
    form = client.get("/admin/campaigns/ratelimit/add/").content.decode()
    assert '<option value="email">Email</option>' in form and '<option value="sms">SMS</option>' in form
    assert "How many may go at once after a quiet spell" in form and "Off: no limit at all." in form

    typed = client.post("/admin/campaigns/ratelimit/add/", {"name": "Email", "rate": "5", "burst": "10", "enabled": "on"})
    assert typed.status_code == 200
    assert "Select a valid choice. Email is not one of the available choices." in typed.content.decode()
    again = client.post("/admin/campaigns/ratelimit/add/", {"name": "email", "rate": "5", "burst": "10", "enabled": "on"})
    assert again.status_code == 200
    assert "The email channel already has a rate limit: change that row instead." in again.content.decode()
    assert RateLimit.objects.count() == 2


def test_the_rate_limit_list_says_which_rows_are_in_force(superuser):
    rate_limit_row(name="email", rate=2.5, burst=5)
    rate_limit_row(name="sms", rate=1, burst=5, enabled=False)
    page = _login(superuser).get("/admin/campaigns/ratelimit/").content.decode()
    assert "Enabled: 2.5 per second, burst 5" in page
    assert "Disabled: no limit" in page


# --- Commands ------------------------------------------------------------------------------------


def test_start_campaign_sync_creates_the_messages_here(owner):
    campaign = _campaign(owner)
    out = StringIO()
    call_command("start_campaign", str(campaign.pk), "--sync", stdout=out)
    assert out.getvalue().strip() == "Campaign 'Spring' running: 2 messages"
    campaign.refresh_from_db()
    assert (campaign.status, campaign.total_count) == (CampaignStatus.RUNNING, 2)
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {MessageStatus.QUEUED}
    assert AuditLog.objects.filter(entity_type="campaign", metadata__source="command", after__status="starting").exists()


def test_start_campaign_without_sync_leaves_the_fan_out_to_a_worker(owner):
    campaign = _campaign(owner)
    out = StringIO()
    call_command("start_campaign", str(campaign.pk), stdout=out)
    assert "starting" in out.getvalue()
    assert not Message.objects.exists()


def test_start_campaign_refuses_an_unknown_or_started_campaign(owner):
    with pytest.raises(CommandError, match="No campaign nope"):
        call_command("start_campaign", "nope")
    with pytest.raises(CommandError, match="No campaign"):
        call_command("start_campaign", "7d0b1a3e-1f0e-4a43-9d0d-1d2b6b1c0f00")
    campaign = _running(owner)
    with pytest.raises(CommandError, match="is running; cannot start it"):
        call_command("start_campaign", str(campaign.pk), "--sync")
    assert Message.objects.count() == 2


def test_requeue_expired_leases_command_reports_what_it_did(owner):
    campaign = _running(owner)
    out = StringIO()
    call_command("requeue_expired_leases", stdout=out)
    assert out.getvalue().strip() == "No expired leases"

    dispatch.claim(token="dead", limit=10)
    past = timezone.now() - timedelta(seconds=1)
    Message.objects.filter(campaign=campaign, recipient="ann@x.io").update(leased_until=past)
    Message.objects.filter(campaign=campaign, recipient="bob@x.io").update(leased_until=past, send_started_at=past)
    out = StringIO()
    call_command("requeue_expired_leases", stdout=out)
    assert sorted(out.getvalue().strip().split(", ")) == ["queued: 1", "unknown: 1"]
    statuses = dict(Message.objects.values_list("recipient", "status"))
    assert statuses == {"ann@x.io": MessageStatus.QUEUED, "bob@x.io": MessageStatus.UNKNOWN}


def test_purge_messages_deletes_only_messages_of_campaigns_finished_long_ago(owner):
    old = _running(owner, list_name="Old", name="Old")
    recent = _running(owner, list_name="Recent", emails=("cy@x.io",), name="Recent")
    active = _running(owner, list_name="Active", emails=("di@x.io",), name="Active")
    Message.objects.filter(campaign=old).update(status="sent")
    Campaign.objects.filter(pk=old.pk).update(status="completed", sent_count=2, finished_at=timezone.now() - timedelta(days=40))
    Campaign.objects.filter(pk=recent.pk).update(status="cancelled", finished_at=timezone.now() - timedelta(days=5))
    Campaign.objects.filter(pk=active.pk).update(started_at=timezone.now() - timedelta(days=90))

    out = StringIO()
    call_command("purge_messages", "--older-than", "30", stdout=out)

    assert out.getvalue().strip() == "Deleted 2 messages"
    assert not Message.objects.filter(campaign=old).exists()
    assert Message.objects.filter(campaign=recent).count() == 1 and Message.objects.filter(campaign=active).count() == 1
    old.refresh_from_db()
    assert (old.total_count, old.sent_count) == (2, 2)  # the counters stay
    row = AuditLog.objects.get(entity_type="message", action="delete")
    assert (row.metadata["deleted"], row.metadata["source"]) == (2, "command")


def test_purge_messages_needs_a_positive_age():
    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("purge_messages", "--older-than", "0")
    with pytest.raises(CommandError):
        call_command("purge_messages")
    with pytest.raises(CommandError, match="^--older-than must be at most 36,500 days$"):
        call_command("purge_messages", "--older-than", "99999999999")
    assert not AuditLog.objects.filter(entity_type="message").exists()


@pytest.mark.django_db(transaction=True)
def test_admin_test_send_action_mails_the_operator(client, owner, smtp_server):
    from campaigns import services as campaign_services
    from inboxerr.actors import Actor as _Actor
    from subscribers.tests.factories import SubscriberFactory as _Sub, SubscriberListFactory as _List

    _Sub(list=_List(owner=owner, name="AdminTest"), email="x@x.io", name="X")
    campaign = campaign_services.campaign_create(
        actor=_Actor(user=owner, source="api"), owner=owner, name="T", channel="email", subject="Hello {{ name }}",
        message_content="Body", list_names=["AdminTest"],
    )
    client.force_login(owner)
    client.post("/admin/campaigns/campaign/", {"action": "test_send_to_me", "_selected_action": [str(campaign.pk)]})
    assert [rcpt for rcpt, _ in smtp_server.messages] == [[owner.email]]
    assert smtp_server.messages[0][1]["Subject"] == "[TEST] Hello X"
