"""The audience's status filter: active subscribers always, inactive ones only when the campaign
asks for them (a re-engagement send), unsubscribed, bounced and suppressed ones never; the API,
the dry run, the fan-out (PostgreSQL and the portable writer) and the wizard agree."""

import re

import pytest
from django.db import connection

from campaigns import services
from campaigns.models import Campaign, Message, MessageStatus
from inboxerr.actors import Actor
from inboxerr.tests.admin_browser import browser_for, page_csrf_token
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

STATUSES = {"ann@x.io": "active", "ian@x.io": "inactive", "una@x.io": "unsubscribed", "bea@x.io": "bounced",
            "sue@x.io": "active"}


@pytest.fixture
def members(owner):
    lst = SubscriberListFactory(owner=owner, name="Members")
    for email, status in STATUSES.items():
        SubscriberFactory(list=lst, email=email, name=email[:3], status=status)
    SuppressionFactory(owner=owner, channel="email", address="sue@x.io")
    return lst


def _outcome(campaign: Campaign) -> dict[str, tuple[str, str]]:
    return {m.recipient: (m.status, m.skip_reason) for m in Message.objects.filter(campaign=campaign)}


def _started(api, **fields) -> Campaign:
    body = {"name": "Back", "channel": "email", "subject": "Hi", "message_content": "We miss you",
            "list_names": ["Members"], **fields}
    response = api.post("/api/v1/campaigns", body, format="json")
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert response.json()["include_inactive"] is bool(fields.get("include_inactive"))
    services.campaign_start(actor=Actor(user=campaign.owner, source="api"), campaign=campaign)
    return services.campaign_fan_out(campaign_id=campaign.pk)


def test_by_default_only_active_subscribers_are_sent_to(api, members):
    assert _outcome(_started(api)) == {
        "ann@x.io": (MessageStatus.QUEUED, ""), "ian@x.io": (MessageStatus.SKIPPED, "inactive"),
        "una@x.io": (MessageStatus.SKIPPED, "unsubscribed"), "bea@x.io": (MessageStatus.SKIPPED, "bounced"),
        "sue@x.io": (MessageStatus.SKIPPED, "suppressed"),
    }


def test_a_re_engagement_campaign_also_sends_to_inactive_subscribers_and_never_to_the_others(api, members):
    outcome = _started(api, include_inactive=True)
    assert _outcome(outcome) == {
        "ann@x.io": (MessageStatus.QUEUED, ""), "ian@x.io": (MessageStatus.QUEUED, ""),
        "una@x.io": (MessageStatus.SKIPPED, "unsubscribed"), "bea@x.io": (MessageStatus.SKIPPED, "bounced"),
        "sue@x.io": (MessageStatus.SKIPPED, "suppressed"),
    }
    assert (outcome.total_count, outcome.skipped_count) == (5, 3)


def test_the_portable_fan_out_applies_the_same_filter(owner, members):
    # The embedded default (SQLite) writes through the ORM; run that path here on the same data.
    campaign = services.campaign_create(actor=Actor(user=owner, source="api"), owner=owner, name="Back",
                                        channel="email", subject="Hi", message_content="We miss you",
                                        list_names=["Members"], include_inactive=True)
    total, skipped = services._fan_out_portable(campaign, [members.pk])
    assert (total, skipped) == (5, 3)
    assert _outcome(campaign)["ian@x.io"] == (MessageStatus.QUEUED, "")


def test_the_dry_run_counts_inactive_subscribers_only_when_they_are_left_out(owner, members):
    actor = Actor(user=owner, source="api")
    kwargs = {"actor": actor, "owner": owner, "channel": "email", "subject": "Hi", "message_content": "Hello",
              "list_names": ["Members"]}
    plain = services.campaign_dry_run(campaign=services.campaign_create(name="A", **kwargs))
    wider = services.campaign_dry_run(campaign=services.campaign_create(name="B", include_inactive=True, **kwargs))
    assert (plain["unsubscribed_bounced_or_inactive"], wider["unsubscribed_bounced_or_inactive"]) == (3, 2)
    if connection.vendor == "postgresql":
        assert (plain["would_queue"], wider["would_queue"]) == (1, 2)


def test_the_wizard_offers_the_inactive_subscribers_at_the_audience_step(owner, members):
    client = browser_for(owner)
    wizard = "/admin/campaigns/campaign/wizard/"
    client.post(wizard, {"csrfmiddlewaretoken": page_csrf_token(client, wizard), "name": "Back", "channel": "email"})
    audience = f"{wizard}audience/"
    page = client.get(audience).content.decode()
    assert "Also send to inactive subscribers" in page
    client.post(audience, {"csrfmiddlewaretoken": page_csrf_token(client, audience), "lists": [members.pk],
                           "include_inactive": "on"})
    content = f"{wizard}message/"
    response = client.post(content, {"csrfmiddlewaretoken": page_csrf_token(client, content), "subject": "Hi",
                                     "message_content": "We miss you"})
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Back")
    assert campaign.include_inactive is True
    change = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert re.search(r"Members \(active and inactive subscribers\)", change)
