"""POST /api/v1/campaigns (seed 001 §4 validations) and who may call each campaign route."""

import pytest

from audit.models import AuditLog
from campaigns import services
from campaigns.models import Campaign, CampaignStatus, Message, MessageTemplate
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns"


@pytest.fixture
def news(owner):
    lst = SubscriberListFactory(owner=owner, name="News")
    SubscriberFactory(list=lst, email="ann@x.io", name="Ann", custom_fields={"order_no": "A1"})
    SubscriberFactory(list=lst, email="bob@x.io", name="Bob", custom_fields={"order_no": "B2"})
    return lst


def _actor(user) -> Actor:
    return Actor(user=user, source="api")


def _template(owner, **fields) -> MessageTemplate:
    data = {"name": "T", "channel": "email", "subject": "Hi {{ name }}", "body_text": "Order {{ order_no }}", **fields}
    return services.template_create(actor=_actor(owner), owner=owner, **data)


def _body(**fields) -> dict:
    return {"name": "Spring", "channel": "email", "subject": "Hi {{ name }}",
            "message_content": "Your order {{ order_no }}", "list_names": ["News"], **fields}


def _assert_nothing_stored() -> None:
    assert not Campaign.objects.exists()
    assert not Message.objects.exists()
    assert not AuditLog.objects.filter(entity_type="campaign").exists()


# --- Success with either -------------------------------------------------------------------------


def test_owner_creates_a_campaign_with_message_content(api, owner, news):
    response = api.post(URL, _body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["message_content"], body["template_id"], body["list_names"]) == (
        "draft", "Your order {{ order_no }}", None, ["News"])
    campaign = Campaign.objects.get(pk=body["id"])
    assert (campaign.owner, campaign.channel, campaign.subject) == (owner, "email", "Hi {{ name }}")
    assert list(campaign.lists.all()) == [news]
    assert not Message.objects.exists()  # messages are created by start, not by create
    row = AuditLog.objects.get(entity_type="campaign", action="create")
    assert (row.entity_id, row.owner_id, row.after["lists"]) == (str(campaign.pk), owner.pk, ["News"])


def test_owner_creates_a_campaign_from_a_template(api, owner, news):
    template = _template(owner)
    response = api.post(URL, _body(message_content="", subject="", template_id=template.pk), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["template_id"] == template.pk and response.json()["message_content"] == ""
    assert Campaign.objects.get().template == template


def test_a_scheduled_campaign_is_created_scheduled(api, news):
    response = api.post(URL, _body(scheduled_at="2030-01-01T10:00:00Z"), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "scheduled" and Campaign.objects.get().scheduled_at.year == 2030


def test_an_sms_campaign_needs_no_subject(api, owner):
    lst = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    SubscriberFactory(list=lst, email="", phone="+14155552671")
    response = api.post(URL, {"name": "S", "channel": "sms", "message_content": "Hi {{ name }}", "list_names": ["Phones"]},
                        format="json")
    assert response.status_code == 201, response.content


def test_an_sms_campaign_with_a_subject_is_refused_naming_the_field(api, owner):
    lst = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    SubscriberFactory(list=lst, email="", phone="+14155552671")
    response = api.post(URL, {"name": "S", "channel": "sms", "subject": "Sale", "message_content": "Hi",
                              "list_names": ["Phones"]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "subject: SMS messages have no subject; leave it empty"
    _assert_nothing_stored()


# --- Seed 001 §4: content or template ------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "   \n "])
def test_neither_template_nor_content_is_refused_saying_so(api, news, content):
    response = api.post(URL, _body(message_content=content), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "message_content"
    assert "template_id or message_content" in body["detail"]
    _assert_nothing_stored()


def test_content_field_absent_and_no_template_is_refused(api, news):
    data = _body()
    del data["message_content"]
    response = api.post(URL, data, format="json")
    assert response.status_code == 400 and "template_id or message_content" in response.json()["detail"]
    _assert_nothing_stored()


def test_both_template_and_content_are_refused(api, owner, news):
    template = _template(owner)
    response = api.post(URL, _body(template_id=template.pk), format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "template_id" and "not both" in response.json()["detail"]
    _assert_nothing_stored()


def test_a_template_of_another_owner_is_not_found(api, outsider, news):
    theirs = _template(outsider)
    response = api.post(URL, _body(message_content="", template_id=theirs.pk), format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "template_id" and f"template {theirs.pk} not found" in response.json()["detail"]
    _assert_nothing_stored()


def test_a_template_that_does_not_exist_is_not_found(api, news):
    response = api.post(URL, _body(message_content="", template_id=999_999), format="json")
    assert response.status_code == 400 and "not found" in response.json()["detail"]
    _assert_nothing_stored()


def test_an_inactive_template_is_refused(api, owner, news):
    template = _template(owner, is_active=False)
    response = api.post(URL, _body(message_content="", template_id=template.pk), format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "template_id" and "not active" in response.json()["detail"]
    _assert_nothing_stored()


def test_a_template_for_another_channel_is_refused(api, owner, news):
    template = _template(owner, channel="sms", subject="")
    response = api.post(URL, _body(message_content="", template_id=template.pk), format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "template_id" and "is for sms, not email" in response.json()["detail"]
    _assert_nothing_stored()


def test_content_that_does_not_compile_is_refused_with_the_reason(api, news):
    response = api.post(URL, _body(message_content="Hi\n{% if x %}"), format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "message_content"
    assert "line 2" in response.json()["detail"] and "Unclosed tag" in response.json()["detail"]
    _assert_nothing_stored()


def test_content_longer_than_the_limit_is_refused(api, news):
    response = api.post(URL, _body(message_content="x" * 100_001), format="json")
    assert response.status_code == 400 and "message_content" in response.json()["detail"]
    _assert_nothing_stored()


def test_an_email_campaign_without_a_subject_is_refused(api, news):
    response = api.post(URL, _body(subject=""), format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "subject" and "subject" in response.json()["detail"]
    _assert_nothing_stored()


def test_an_email_campaign_whose_template_has_no_subject_needs_one(api, owner, news):
    template = _template(owner, subject="")
    response = api.post(URL, _body(message_content="", subject="", template_id=template.pk), format="json")
    assert response.status_code == 400 and response.json()["field"] == "subject"
    _assert_nothing_stored()


# --- Audience and merge fields -------------------------------------------------------------------


def test_an_unknown_list_is_refused_naming_list_names(api, news):
    response = api.post(URL, _body(list_names=["News", "Nope"]), format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "list_names" and "'Nope' not found" in response.json()["detail"]
    _assert_nothing_stored()


def test_another_owners_list_is_not_found(api, outsider, news):
    SubscriberListFactory(owner=outsider, name="Theirs")
    response = api.post(URL, _body(list_names=["Theirs"]), format="json")
    assert response.status_code == 400 and response.json()["field"] == "list_names"
    _assert_nothing_stored()


def test_a_campaign_without_an_audience_is_refused(api, news):
    response = api.post(URL, _body(list_names=[]), format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "list_names" and "audience" in response.json()["detail"]
    _assert_nothing_stored()


def test_an_unknown_import_is_refused_naming_import_id(api, news):
    response = api.post(URL, _body(import_id="7d0b1a3e-1f0e-4a43-9d0d-1d2b6b1c0f00"), format="json")
    assert response.status_code == 400 and response.json()["field"] == "import_id"
    _assert_nothing_stored()


def test_missing_merge_fields_are_named(api, news):
    response = api.post(URL, _body(message_content="{{ coupon }} {{ order_no }} {{ city|default:'-' }} {{ zone }}"),
                        format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["missing_fields"] == ["coupon", "zone"]
    assert "coupon, zone" in body["detail"] and body["field"] == "message_content"
    _assert_nothing_stored()


def test_missing_merge_fields_of_a_template_are_named(api, owner, news):
    template = _template(owner, body_text="{{ voucher }}")
    response = api.post(URL, _body(message_content="", subject="", template_id=template.pk), format="json")
    assert response.status_code == 400
    assert response.json()["missing_fields"] == ["voucher"] and response.json()["field"] == "template_id"
    _assert_nothing_stored()


def test_recipient_fields_are_always_available(api, news):
    response = api.post(URL, _body(message_content="{{ email }} {{ name }} {{ unsubscribe_url }}"), format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("field, value", [
    ("channel", "fax"), ("name", ""), ("template_id", "abc"), ("list_names", "News"), ("scheduled_at", "soon"),
])
def test_invalid_values_are_refused_naming_the_field(api, news, field, value):
    response = api.post(URL, _body(**{field: value}), format="json")
    assert response.status_code == 400
    assert field in response.json()["detail"]
    _assert_nothing_stored()


def test_an_empty_body_is_refused(api):
    response = api.post(URL, {}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["detail"] and "channel" in response.json()["detail"]
    _assert_nothing_stored()


# --- Reading -------------------------------------------------------------------------------------


def test_owner_lists_only_their_campaigns(api, owner, outsider, news):
    services.campaign_create(actor=_actor(owner), owner=owner, name="Mine", channel="email", subject="s",
                             message_content="x", list_names=["News"])
    SubscriberListFactory(owner=outsider, name="News")
    services.campaign_create(actor=_actor(outsider), owner=outsider, name="Theirs", channel="email", subject="s",
                             message_content="x", list_names=["News"])
    response = api.get(URL)
    assert response.status_code == 200 and [c["name"] for c in response.json()] == ["Mine"]


def test_a_malformed_campaign_id_is_not_found(api):
    assert api.get(f"{URL}/not-a-uuid").status_code == 404


# --- Everyone else on every route ----------------------------------------------------------------

ROUTES = [
    ("get", ""), ("post", "/start"), ("post", "/pause"), ("post", "/resume"), ("post", "/cancel"),
    ("post", "/retry-failed"), ("post", "/test-send"), ("get", "/preview"), ("get", "/dry-run"), ("get", "/messages"),
]


@pytest.fixture
def campaign(owner, news) -> Campaign:
    return services.campaign_create(actor=_actor(owner), owner=owner, name="Spring", channel="email", subject="Hi",
                                    message_content="Order {{ order_no }}", list_names=["News"])


def _call(client, method: str, path: str):
    data = {"recipient": "qa@x.io"} if path.endswith("test-send") else None
    return getattr(client, method)(path, data, format="json")


def _assert_untouched(campaign: Campaign) -> None:
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert not Message.objects.exists()
    assert not AuditLog.objects.filter(entity_type="campaign").exclude(action="create").exists()


@pytest.mark.parametrize("method, suffix", ROUTES)
def test_outsider_gets_not_found_on_every_campaign_route(outsider_api, campaign, method, suffix):
    response = _call(outsider_api, method, f"{URL}/{campaign.pk}{suffix}")
    assert response.status_code == 404, response.content
    _assert_untouched(campaign)


@pytest.mark.parametrize("method, suffix", ROUTES)
def test_anonymous_caller_is_refused_on_every_campaign_route(anon_api, campaign, method, suffix):
    response = _call(anon_api, method, f"{URL}/{campaign.pk}{suffix}")
    assert response.status_code == 401
    _assert_untouched(campaign)


@pytest.mark.parametrize("method, suffix", ROUTES)
def test_user_without_permissions_is_refused_on_every_campaign_route(no_perms_api, campaign, method, suffix):
    response = _call(no_perms_api, method, f"{URL}/{campaign.pk}{suffix}")
    assert response.status_code == 403
    _assert_untouched(campaign)


def test_everyone_else_is_refused_on_the_campaign_list_and_create(anon_api, no_perms_api, outsider_api, campaign):
    assert anon_api.get(URL).status_code == 401
    assert anon_api.post(URL, _body(), format="json").status_code == 401
    assert no_perms_api.get(URL).status_code == 403
    assert no_perms_api.post(URL, _body(), format="json").status_code == 403
    assert outsider_api.get(URL).json() == []
    # The outsider cannot reach the owner's list or template by name or id either.
    template = _template(campaign.owner, name="Owners")
    response = outsider_api.post(URL, _body(), format="json")
    assert response.status_code == 400 and response.json()["field"] == "list_names"
    response = outsider_api.post(URL, _body(message_content="", template_id=template.pk), format="json")
    assert response.status_code == 400 and response.json()["field"] == "template_id"
    assert Campaign.objects.count() == 1
