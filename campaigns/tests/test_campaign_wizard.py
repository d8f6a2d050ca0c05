"""The campaign wizard of the admin and the start confirmation of the change list, through a
client that checks CSRF as a browser's session does: every step calls the API's services, bad
input comes back as a form error, and nothing is sent or started before the confirming POST."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditLog
from campaigns import services
from campaigns.models import Campaign, CampaignStatus, Message
from campaigns.tests.buckets import rate_limit_row
from inboxerr.actors import Actor
from inboxerr.errors import Conflict, InvalidInput
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

CAMPAIGNS = "/admin/campaigns/campaign/"
WIZARD = f"{CAMPAIGNS}wizard/"
AUDIENCE = f"{WIZARD}audience/"
CONTENT = f"{WIZARD}message/"


def _client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _post(client: Client, url: str, data: dict, form_url: str | None = None):
    """POST as the browser would: with the CSRF token of the form on the page."""
    page = client.get(form_url or url)
    assert page.status_code == 200, page.content[:1000]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def _errors(response) -> str:
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S))


@pytest.fixture
def news(owner):
    lst = SubscriberListFactory(owner=owner, name="News")
    SubscriberFactory(list=lst, email="ann@x.io", name="Ann", custom_fields={"order_no": "A1"})
    SubscriberFactory(list=lst, email="bob@x.io", name="Bob", custom_fields={"order_no": "B2"})
    SubscriberFactory(list=lst, email="cy@x.io", name="Cy")
    SuppressionFactory(owner=owner, channel="email", address="cy@x.io")
    return lst


def _through_audience(client: Client, news, *, name: str = "Spring", channel: str = "email") -> None:
    assert _post(client, WIZARD, {"name": name, "channel": channel}).status_code == 302
    assert _post(client, AUDIENCE, {"lists": [news.pk]}).status_code == 302


def _create(client: Client, news, **content) -> Campaign:
    _through_audience(client, news)
    response = _post(client, CONTENT, {"template": "", "subject": "Hi {{ name }}", "message_content": "Hello {{ name }}",
                                       **content})
    assert response.status_code == 302, _errors(response)
    return Campaign.objects.get()


# --- The whole way through -----------------------------------------------------------------------


def test_add_campaign_opens_the_wizard(owner):
    client = _client(owner)
    assert b'href="/admin/campaigns/campaign/add/"' in client.get(CAMPAIGNS).content
    response = client.get(f"{CAMPAIGNS}add/")
    assert (response.status_code, response["Location"]) == (302, WIZARD)
    page = client.get(WIZARD)
    assert b'<label for="id_name">Campaign name:</label>' in page.content
    assert b"<legend>Channel:</legend>" in page.content


def test_the_wizard_creates_a_draft_then_dry_runs_tests_and_starts_only_when_confirmed(owner, news, smtp_server):
    rate_limit_row(name="email", rate=2, burst=5)
    client = _client(owner)
    _through_audience(client, news)
    response = _post(client, CONTENT, {"template": "", "subject": "Hi {{ name }}",
                                       "message_content": "Order {{ order_no|default:'-' }}"})
    campaign = Campaign.objects.get()
    assert response["Location"] == f"{CAMPAIGNS}{campaign.pk}/dry-run/"
    assert (campaign.owner, campaign.name, campaign.status, campaign.subject) == (owner, "Spring", "draft", "Hi {{ name }}")
    assert list(campaign.lists.all()) == [news]
    row = AuditLog.objects.get(entity_type="campaign", action="create")
    assert (row.entity_id, row.metadata["source"]) == (str(campaign.pk), "admin")

    dry_run = client.get(response["Location"]).content.decode()
    assert '<td id="would-queue">2</td>' in dry_run  # three subscribers, one suppressed
    assert "<th scope=\"row\">Suppressed</th><td>1</td>" in dry_run
    assert "Subject: <strong>Hi Ann</strong>" in dry_run and "Order A1" in dry_run

    test_url = f"{CAMPAIGNS}{campaign.pk}/test-send/"
    response = _post(client, test_url, {"recipient": "Me@Example.com"})
    assert response.status_code == 302
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["me@example.com"]]
    assert smtp_server.messages[0][1]["Subject"] == "[TEST] Hi Ann"
    assert "Test sent to me@example.com." in client.get(test_url).content.decode()

    confirm_url = f"{CAMPAIGNS}{campaign.pk}/start/"
    page = client.get(confirm_url).content.decode()
    assert '<td class="count">2</td>' in page
    assert "2 per second on email (burst 5)" in page and "about 1 s" in page
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and not Message.objects.exists()

    response = _post(client, confirm_url, {"when": "now"})
    assert response["Location"] == f"{CAMPAIGNS}{campaign.pk}/change/"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.STARTING
    assert len(smtp_server.messages) == 1  # only the test; the fan-out and sends are the workers'


def test_a_campaign_can_be_scheduled_from_the_confirmation(owner, news):
    client = _client(owner)
    campaign = _create(client, news)
    when = (timezone.localtime() + timedelta(days=1)).replace(second=0, microsecond=0)
    response = _post(client, f"{CAMPAIGNS}{campaign.pk}/start/",
                     {"when": "scheduled", "scheduled_at": when.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == (CampaignStatus.SCHEDULED, when)
    row = AuditLog.objects.filter(entity_type="campaign", action="update").latest("id")
    assert row.after["status"] == "scheduled" and row.metadata["source"] == "admin"


def test_a_scheduled_time_in_the_past_or_missing_is_refused(owner, news):
    client = _client(owner)
    campaign = _create(client, news)
    url = f"{CAMPAIGNS}{campaign.pk}/start/"
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert "give a time in the future" in _errors(_post(client, url, {"when": "scheduled", "scheduled_at": past}))
    assert "Give the time to start at." in _errors(_post(client, url, {"when": "scheduled", "scheduled_at": ""}))
    future = (timezone.localtime() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert "You gave a time" in _errors(_post(client, url, {"when": "now", "scheduled_at": future}))
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == (CampaignStatus.DRAFT, None)


def test_only_a_draft_or_scheduled_campaign_is_scheduled_and_only_for_the_future(owner, news):
    campaign = _create(_client(owner), news)
    actor = Actor(user=owner, source="api")
    with pytest.raises(InvalidInput, match="give a time in the future"):
        services.campaign_schedule(actor=actor, campaign=campaign, scheduled_at=timezone.now())
    later = timezone.now() + timedelta(hours=2)
    services.campaign_schedule(actor=actor, campaign=campaign, scheduled_at=later - timedelta(hours=1))
    services.campaign_schedule(actor=actor, campaign=campaign, scheduled_at=later)  # rescheduled
    services.campaign_start(actor=actor, campaign=campaign)
    with pytest.raises(Conflict, match="is starting; cannot schedule it"):
        services.campaign_schedule(actor=actor, campaign=campaign, scheduled_at=later)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == (CampaignStatus.STARTING, later)


def test_an_sms_campaign_dry_run_shows_encoding_and_segments(owner):
    phones = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    SubscriberFactory(list=phones, email="", phone="+14155552671", key="+14155552671", name="Zoë")
    client = _client(owner)
    _through_audience(client, phones, channel="sms")
    response = _post(client, CONTENT, {"template": "", "message_content": "Hi {{ name }} " + "x" * 80})
    campaign = Campaign.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert "<td>UCS-2</td>" in page and "<td>2, 2.0</td>" in page
    assert campaign.channel == "sms"


def test_the_dry_run_says_which_recipients_lack_a_merge_field_such_as_a_blank_phone(owner, news):
    SubscriberFactory(list=news, email="dee@x.io", name="Dee", phone="+14155552671")
    client = _client(owner)
    response = _post_content(client, news, message_content="Call {{ phone }}")
    page = client.get(response["Location"]).content.decode()
    assert "3 of the first 4 recipients lack:\n<code>phone</code> (3)." in page
    assert "have every merge field" not in page


def test_the_dry_run_says_when_every_recipient_checked_has_every_merge_field(owner, news):
    client = _client(owner)
    response = _post_content(client, news, message_content="Hello {{ name }}, {{ email }}")
    page = client.get(response["Location"]).content.decode()
    assert "All 3 recipients checked have every merge field." in page and "lack:" not in page


def _post_content(client: Client, news, **content):
    _through_audience(client, news)
    response = _post(client, CONTENT, {"template": "", "subject": "Hi", "message_content": "", **content})
    assert response.status_code == 302, _errors(response)
    return response


def test_a_drafts_page_links_to_its_dry_run_test_send_and_start(owner, news):
    campaign = _draft(owner, news)
    client = _client(owner)
    page = client.get(f"{CAMPAIGNS}{campaign.pk}/change/").content.decode()
    for step in ("dry-run", "test-send", "start"):
        assert f'href="{CAMPAIGNS}{campaign.pk}/{step}/"' in page
    services.campaign_start(actor=Actor(user=owner, source="api"), campaign=campaign)
    # Once started, the steps are no longer offered (the live page shows them again only for a
    # draft or a scheduled campaign).
    started = client.get(f"{CAMPAIGNS}{campaign.pk}/change/").content.decode()
    assert re.search(rf'href="{CAMPAIGNS}{campaign.pk}/start/" data-when="draft scheduled"\s+hidden>', started)


# --- Bad input: a form error, nothing written ----------------------------------------------------


@pytest.mark.parametrize(("name", "error"), [
    ("", "This field is required."),
    ("Spring\x00sale", "Null characters are not allowed."),
    ("x" * 10_000, "Ensure this value has at most 200 characters (it has 10000)."),
])
def test_a_bad_campaign_name_is_a_form_error(owner, name, error):
    client = _client(owner)
    response = _post(client, WIZARD, {"name": name, "channel": "email"})
    assert response.status_code == 200
    assert error in _errors(response)
    assert client.get(AUDIENCE)["Location"] == WIZARD  # no draft kept


def test_an_unknown_channel_is_a_form_error(owner):
    response = _post(_client(owner), WIZARD, {"name": "Spring", "channel": "fax"})
    assert "Select a valid choice. fax is not one of the available choices." in _errors(response)


def test_an_audience_needs_a_list_and_only_the_owners_lists_are_found(owner, outsider, news):
    theirs = SubscriberListFactory(owner=outsider, name="Theirs")
    client = _client(owner)
    _post(client, WIZARD, {"name": "Spring", "channel": "email"})
    assert "Choose at least one list." in _errors(_post(client, AUDIENCE, {}))
    page = client.get(AUDIENCE).content.decode()
    assert "News (3 subscribers)" in page and "Theirs" not in page
    assert f"List {theirs.pk} not found." in _errors(_post(client, AUDIENCE, {"lists": [theirs.pk]}))
    assert client.get(CONTENT)["Location"] == AUDIENCE


@pytest.mark.parametrize(("content", "error"), [
    ({"message_content": ""}, "A campaign needs message content: give template_id or message_content"),
    ({"message_content": "Order {{ order_no }} for {{ coupon }}"},
     "Merge fields not found in the audience: coupon"),
    ({"subject": ""}, "an email campaign needs a subject (or a template with one)"),
    ({"message_content": "Hi {% if name %}"}, "Unclosed tag"),
    ({"message_content": "Hi {{ first_name"}, "<li>an opening {{ has no closing }}</li>"),
    ({"subject": "Hi {{ first_name"}, "<li>an opening {{ has no closing }}</li>"),
])
def test_bad_content_is_refused_by_campaign_create_as_a_form_error(owner, news, content, error):
    client = _client(owner)
    _through_audience(client, news)
    data = {"template": "", "subject": "Hi", "message_content": "Hello", **content}
    response = _post(client, CONTENT, data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_template_and_content_together_are_refused(owner, news):
    template = services.template_create(actor=Actor(user=owner, source="api"), owner=owner, name="Welcome",
                                        subject="Hi {{ name }}", body_text="Welcome")
    client = _client(owner)
    _through_audience(client, news)
    response = _post(client, CONTENT, {"template": template.pk, "subject": "", "message_content": "Hello"})
    assert "Give either template_id or message_content, not both" in _errors(response)
    assert not Campaign.objects.exists()

    response = _post(client, CONTENT, {"template": template.pk, "subject": "", "message_content": ""})
    assert response.status_code == 302
    assert Campaign.objects.get().template == template


def test_the_message_step_shows_what_each_template_would_send_and_the_chosen_one_open(owner, news):
    template = services.template_create(actor=Actor(user=owner, source="api"), owner=owner, name="Welcome",
                                        subject="Hi {{ name }}", body_text="Welcome <b>{{ name }}</b>")
    client = _client(owner)
    _through_audience(client, news)
    page = client.get(CONTENT).content.decode()
    section = re.search(r'<section class="preview template-content"[^>]*>', page).group(0)
    assert f'data-template="{template.pk}"' in section and section.endswith(" hidden>")  # until it is chosen
    assert "Subject: <strong>Hi {{ name }}</strong>" in page and "Welcome &lt;b&gt;{{ name }}&lt;/b&gt;" in page
    # Back with an error, the chosen template's content is open.
    response = _post(client, CONTENT, {"template": template.pk, "subject": "", "message_content": "Also this"})
    assert response.status_code == 200
    section = re.search(r'<section class="preview template-content"[^>]*>', response.content.decode()).group(0)
    assert not section.endswith(" hidden>")


def test_another_owners_template_is_not_found(owner, outsider, news):
    theirs = services.template_create(actor=Actor(user=outsider, source="api"), owner=outsider, name="Theirs",
                                      subject="S", body_text="x")
    client = _client(owner)
    _through_audience(client, news)
    assert "Theirs" not in client.get(CONTENT).content.decode()
    response = _post(client, CONTENT, {"template": theirs.pk, "subject": "", "message_content": ""})
    assert "Template not found" in _errors(response)
    assert not Campaign.objects.exists()


def test_an_sms_campaign_with_a_subject_is_refused(owner):
    phones = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    SubscriberFactory(list=phones, email="", phone="+14155552671", key="+14155552671")
    client = _client(owner)
    _through_audience(client, phones, channel="sms")
    assert b'type="hidden" name="subject"' in client.get(CONTENT).content  # not offered for SMS
    response = _post(client, CONTENT, {"template": "", "subject": "Sale", "message_content": "Hi"})
    assert "subject: SMS messages have no subject; leave it empty" in _errors(response)
    assert not Campaign.objects.exists()


def test_a_test_send_to_a_bad_address_is_a_form_error(owner, news, smtp_server):
    client = _client(owner)
    campaign = _create(client, news)
    response = _post(client, f"{CAMPAIGNS}{campaign.pk}/test-send/", {"recipient": "not-an-address"})
    assert response.status_code == 200
    assert "&#x27;not-an-address&#x27; is not a valid email address" in _errors(response)
    assert smtp_server.messages == []


# --- Who may ----------------------------------------------------------------------------------


def test_an_outsider_cannot_see_or_start_the_owners_draft(owner, outsider, news):
    campaign = _create(_client(owner), news)
    client = _client(outsider)
    for step in ("dry-run", "test-send", "start"):
        assert client.get(f"{CAMPAIGNS}{campaign.pk}/{step}/").status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_a_superuser_builds_campaigns_from_their_own_lists(superuser, owner, news):
    mine = SubscriberListFactory(owner=superuser, name="Staff list")
    client = _client(superuser)
    _post(client, WIZARD, {"name": "Spring", "channel": "email"})
    page = client.get(AUDIENCE).content.decode()
    # campaign_create finds lists by their owner: another owner's list would only fail later.
    assert "Staff list" in page and "News" not in page
    assert f"List {news.pk} not found." in _errors(_post(client, AUDIENCE, {"lists": [news.pk]}))
    assert _post(client, AUDIENCE, {"lists": [mine.pk]}).status_code == 302


def test_anonymous_callers_are_sent_to_the_login(owner, news):
    campaign = _create(_client(owner), news)
    for url in (WIZARD, f"{CAMPAIGNS}{campaign.pk}/start/"):
        response = Client().get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_user_without_campaign_permissions_is_refused(no_perms_user):
    no_perms_user.is_staff = True
    no_perms_user.save()
    assert _client(no_perms_user).get(WIZARD).status_code == 403


# --- The change list's Start: the same confirmation first -----------------------------------------


def _draft(owner, news, name: str = "Spring") -> Campaign:
    return services.campaign_create(actor=Actor(user=owner, source="api"), owner=owner, name=name, channel="email",
                                    subject="Hi", message_content="Hello {{ name }}", list_names=[news.name])


def test_the_start_action_confirms_count_and_pace_before_starting(owner, news):
    rate_limit_row(name="email", rate=0.5, burst=1)
    first, second = _draft(owner, news), _draft(owner, news, name="Autumn")
    client = _client(owner)
    action = {"action": "campaign_start_action", "_selected_action": [str(first.pk), str(second.pk)]}

    page = _post(client, CAMPAIGNS, action)
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('<td class="count">2</td>') == 2
    assert "0.5 per second on email (burst 1)" in body and "about 4 s" in body
    assert "2 messages together" not in body and "4 messages together, about 8 s" in body
    assert set(Campaign.objects.values_list("status", flat=True)) == {CampaignStatus.DRAFT}
    assert not Message.objects.exists()

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    response = client.post(CAMPAIGNS, {**action, "confirm": "yes", "when": "now", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert set(Campaign.objects.values_list("status", flat=True)) == {CampaignStatus.STARTING}
    assert "Campaign &#x27;Spring&#x27; starting." in client.get(CAMPAIGNS).content.decode()


def test_the_start_action_says_which_campaigns_cannot_start(owner, news):
    running = _draft(owner, news)
    services.campaign_start(actor=Actor(user=owner, source="api"), campaign=running)
    page = _post(_client(owner), CAMPAIGNS, {"action": "campaign_start_action", "_selected_action": [str(running.pk)]})
    body = page.content.decode()
    assert "not started: it is starting" in body and 'value="Yes, start"' not in body


def test_the_start_action_with_a_bad_time_starts_nothing(owner, news):
    campaign = _draft(owner, news)
    client = _client(owner)
    action = {"action": "campaign_start_action", "_selected_action": [str(campaign.pk)]}
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', _post(client, CAMPAIGNS, action).content.decode()).group(1)
    response = client.post(CAMPAIGNS, {**action, "confirm": "yes", "when": "scheduled", "scheduled_at": "",
                                       "csrfmiddlewaretoken": token})
    assert response.status_code == 200 and "Give the time to start at." in _errors(response)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
