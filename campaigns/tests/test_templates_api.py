"""/api/v1/templates/: CRUD as the owner, refusals for everyone else, compile errors with the line
and reason, variables reported, channel rules, name conflicts and templates in use."""

import pytest

from audit.models import AuditLog
from campaigns import services
from campaigns.models import MessageTemplate
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/templates/"


def _template(owner, **fields) -> MessageTemplate:
    data = {"name": "Welcome", "channel": "email", "subject": "Hi {{ name }}",
            "body_text": "Order {{ order_no }}", "body_html": "<p>Order {{ order_no }}</p>", **fields}
    return services.template_create(actor=Actor(user=owner, source="api"), owner=owner, **data)


def _audit(action: str, template_id) -> AuditLog:
    return AuditLog.objects.get(entity_type="template", action=action, entity_id=str(template_id))


# --- The owner -----------------------------------------------------------------------------------


def test_owner_creates_a_template_and_its_variables_are_reported(api, owner):
    response = api.post(URL, {
        "name": "Reminder", "channel": "email", "subject": "Order {{ order_no }}",
        "body_text": 'Hi {{ name|default:"there" }}, use {{ coupon }}',
        "body_html": "<p>{{ coupon }} {{ city|default:'-' }}</p>",
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["variables"] == ["city", "coupon", "name", "order_no"]
    assert body["owner"] == "owner" and body["is_active"] is True
    template = MessageTemplate.objects.get(pk=body["id"])
    assert (template.owner, template.name, template.variables) == (owner, "Reminder", ["city", "coupon", "name", "order_no"])
    row = _audit("create", template.pk)
    assert (row.actor_id, row.owner_id, row.metadata["source"]) == (owner.pk, owner.pk, "api")
    assert row.after["name"] == "Reminder"


def test_owner_lists_and_reads_only_their_own_templates(api, owner, outsider):
    mine = _template(owner)
    _template(outsider, name="Theirs")
    listed = api.get(URL)
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()["results"]] == ["Welcome"]
    detail = api.get(f"{URL}{mine.pk}/")
    assert detail.status_code == 200 and detail.json()["variables"] == ["name", "order_no"]


def test_owner_updates_a_template_and_its_variables_follow(api, owner):
    template = _template(owner)
    response = api.patch(f"{URL}{template.pk}/", {"body_text": "Hi {{ first_name }}", "body_html": ""}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["variables"] == ["first_name", "name"]  # subject still uses name
    template.refresh_from_db()
    assert (template.body_text, template.body_html, template.variables) == ("Hi {{ first_name }}", "", ["first_name", "name"])
    row = _audit("update", template.pk)
    assert row.before["body_text"] == "Order {{ order_no }}" and row.after["body_text"] == "Hi {{ first_name }}"


def test_owner_replaces_a_template_with_put(api, owner):
    template = _template(owner)
    response = api.put(f"{URL}{template.pk}/", {"name": "Welcome 2", "channel": "email", "subject": "S",
                                                  "body_text": "T", "body_html": "", "is_active": False}, format="json")
    assert response.status_code == 200, response.content
    template.refresh_from_db()
    assert (template.name, template.is_active, template.variables) == ("Welcome 2", False, [])


def test_owner_deletes_an_unused_template(api, owner):
    template = _template(owner)
    response = api.delete(f"{URL}{template.pk}/")
    assert response.status_code == 204
    assert not MessageTemplate.objects.filter(pk=template.pk).exists()
    assert _audit("delete", template.pk).before["name"] == "Welcome"


# --- Bad templates -------------------------------------------------------------------------------


@pytest.mark.parametrize("part, source, reason", [
    ("body_text", "Hello\n{% if vip %}\nno end", "Unclosed tag"),
    ("body_html", "<p>\n\n{{ name|shout }}</p>", "Invalid filter: 'shout'"),
    ("subject", "Hi {% bogus %}", "Invalid block tag"),
])
def test_a_template_that_does_not_compile_is_refused_with_line_and_reason(api, part, source, reason):
    data = {"name": "Broken", "channel": "email", "subject": "S", "body_text": "T", part: source}
    response = api.post(URL, data, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    line = source.count("\n", 0, source.index("{%" if "{%" in source else "{{")) + 1
    assert body["field"] == part
    assert body["detail"].startswith(f"{part}: line {line}: ") and reason in body["detail"]
    assert not MessageTemplate.objects.exists() and not AuditLog.objects.filter(entity_type="template").exists()


@pytest.mark.parametrize("part, source, detail", [
    ("subject", "Hi {{ first_name", "subject: an opening {{ has no closing }}"),
    ("body_text", "Hello {{ name }}\nYour code {{ code\n}}", "body_text: line 2: an opening {{ has no closing }}"),
    ("body_html", "<p>{% if vip %}VIP{% endif </p>", "body_html: an opening {% has no closing %}"),
])
def test_a_merge_field_left_open_is_refused_rather_than_sent_as_text(api, part, source, detail):
    data = {"name": "Open", "channel": "email", "subject": "S", "body_text": "T", part: source}
    response = api.post(URL, data, format="json")
    assert response.status_code == 400, response.content
    assert (response.json()["field"], response.json()["detail"]) == (part, detail)
    assert not MessageTemplate.objects.exists() and not AuditLog.objects.filter(entity_type="template").exists()


def test_an_update_that_does_not_compile_is_refused_and_the_template_is_kept(api, owner):
    template = _template(owner)
    response = api.patch(f"{URL}{template.pk}/", {"body_text": "ok\n{{ name|nope }}"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "body_text" and "line 2" in response.json()["detail"]
    template.refresh_from_db()
    assert template.body_text == "Order {{ order_no }}"
    assert not AuditLog.objects.filter(entity_type="template", action="update").exists()


def test_an_sms_template_with_an_html_body_is_refused(api):
    response = api.post(URL, {"name": "Text", "channel": "sms", "body_text": "Hi", "body_html": "<p>Hi</p>"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "body_html" and "SMS" in response.json()["detail"]
    assert not MessageTemplate.objects.exists()


def test_an_sms_template_with_a_text_body_is_accepted(api):
    response = api.post(URL, {"name": "Text", "channel": "sms", "body_text": "Hi {{ name }}"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["channel"] == "sms" and response.json()["variables"] == ["name"]


def test_a_template_without_any_body_is_refused(api):
    response = api.post(URL, {"name": "Empty", "channel": "email", "subject": "S", "body_text": "  "}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "body_text"
    assert not MessageTemplate.objects.exists()


def test_an_unknown_channel_is_refused_naming_the_field(api):
    response = api.post(URL, {"name": "X", "channel": "fax", "body_text": "Hi"}, format="json")
    assert response.status_code == 400 and "channel" in response.json()["detail"]
    assert not MessageTemplate.objects.exists()


def test_a_template_without_a_name_is_refused(api):
    response = api.post(URL, {"channel": "email", "body_text": "Hi"}, format="json")
    assert response.status_code == 400 and "name" in response.json()["detail"]


# --- Conflicts -----------------------------------------------------------------------------------


def test_a_duplicate_name_is_a_conflict(api, owner):
    _template(owner)
    response = api.post(URL, {"name": "Welcome", "channel": "email", "body_text": "other"}, format="json")
    assert response.status_code == 409
    assert response.json()["field"] == "name" and "Welcome" in response.json()["detail"]
    assert MessageTemplate.objects.filter(owner=owner).count() == 1


def test_renaming_onto_an_existing_name_is_a_conflict(api, owner):
    _template(owner)
    other = _template(owner, name="Other")
    response = api.patch(f"{URL}{other.pk}/", {"name": "Welcome"}, format="json")
    assert response.status_code == 409 and response.json()["field"] == "name"
    other.refresh_from_db()
    assert other.name == "Other"


def test_two_owners_may_use_the_same_name(api, owner, outsider):
    _template(outsider, name="Welcome")
    response = api.post(URL, {"name": "Welcome", "channel": "email", "body_text": "Hi"}, format="json")
    assert response.status_code == 201


def test_a_template_used_by_a_campaign_cannot_be_deleted(api, owner):
    template = _template(owner)
    SubscriberFactory(list=SubscriberListFactory(owner=owner, name="News"), custom_fields={"order_no": "1"})
    services.campaign_create(actor=Actor(user=owner, source="api"), owner=owner, name="C", channel="email",
                             template_id=template.pk, list_names=["News"])
    response = api.delete(f"{URL}{template.pk}/")
    assert response.status_code == 409
    assert response.json()["field"] == "template_id" and "used by campaigns" in response.json()["detail"]
    assert MessageTemplate.objects.filter(pk=template.pk).exists()
    assert not AuditLog.objects.filter(entity_type="template", action="delete").exists()


# --- Everyone else -------------------------------------------------------------------------------


@pytest.mark.parametrize("method, data", [
    ("get", None), ("patch", {"body_text": "hijacked"}),
    ("put", {"name": "x", "channel": "email", "subject": "s", "body_text": "hijacked"}), ("delete", None),
])
def test_outsider_cannot_see_or_change_a_template(outsider_api, owner, method, data):
    template = _template(owner)
    response = getattr(outsider_api, method)(f"{URL}{template.pk}/", data, format="json")
    assert response.status_code == 404
    template.refresh_from_db()
    assert template.body_text == "Order {{ order_no }}"
    assert outsider_api.get(URL).json()["results"] == []


@pytest.mark.parametrize("method, path, data", [
    ("get", "", None), ("post", "", {"name": "x", "channel": "email", "body_text": "t"}),
    ("get", "{pk}/", None), ("patch", "{pk}/", {"body_text": "x"}), ("delete", "{pk}/", None),
])
def test_anonymous_caller_is_refused(anon_api, owner, method, path, data):
    template = _template(owner)
    response = getattr(anon_api, method)(URL + path.format(pk=template.pk), data, format="json")
    assert response.status_code == 401
    assert MessageTemplate.objects.count() == 1 and MessageTemplate.objects.get().body_text == "Order {{ order_no }}"


@pytest.mark.parametrize("method, path, data", [
    ("get", "", None), ("post", "", {"name": "x", "channel": "email", "body_text": "t"}),
    ("get", "{pk}/", None), ("patch", "{pk}/", {"body_text": "x"}), ("delete", "{pk}/", None),
])
def test_user_without_permissions_is_refused(no_perms_api, owner, method, path, data):
    template = _template(owner)
    response = getattr(no_perms_api, method)(URL + path.format(pk=template.pk), data, format="json")
    assert response.status_code == 403
    assert MessageTemplate.objects.count() == 1 and MessageTemplate.objects.get().body_text == "Order {{ order_no }}"


def test_superuser_sees_every_owners_templates(superuser_api, owner, outsider):
    _template(owner)
    _template(outsider, name="Theirs")
    names = sorted(t["name"] for t in superuser_api.get(URL).json()["results"])
    assert names == ["Theirs", "Welcome"]


def test_the_format_suffix_addresses_take_every_method(api, owner):
    # The router also serves /templates.json and /templates/<id>.json: each method works there too.
    created = api.post("/api/v1/templates.json", {"name": "Dotted", "channel": "email", "subject": "Hi",
                                                  "body_text": "Hi"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert api.put(f"{URL}{pk}.json", {"name": "Dotted 2", "channel": "email", "subject": "Hi", "body_text": "Hi"},
                   format="json").status_code == 200
    assert api.patch(f"{URL}{pk}.json", {"name": "Dotted 3"}, format="json").json()["name"] == "Dotted 3"
    assert api.delete(f"{URL}{pk}.json").status_code == 204
    assert not MessageTemplate.objects.filter(pk=pk).exists()
