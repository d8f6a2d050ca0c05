"""GET and POST /api/v1/subscribers/lists: every list with its count, and explicit creation."""

import json

import pytest

from audit.models import AuditLog
from subscribers.models import SubscriberList
from subscribers.tests.helpers import LISTS, PERMISSION_DENIED, add, db_state, make_list, post_raw


@pytest.fixture
def owner_lists(owner):
    big = make_list(owner, "Newsletter", description="Weekly")
    small = make_list(owner, "Beta")
    for _ in range(3):
        add(big)
    add(small)
    return big, small


def test_owner_sees_their_lists_with_counts_largest_first(api, owner_lists):
    response = api.get(LISTS)

    assert response.status_code == 200
    body = response.json()
    assert [(row["name"], row["count"]) for row in body] == [("Newsletter", 3), ("Beta", 1)]
    assert body[0]["description"] == "Weekly"
    assert body[0]["key_field"] == "email"
    assert body[0]["owner"] == "owner"
    assert set(body[0]) == {"id", "name", "count", "description", "key_field", "owner", "created_at"}


def test_simple_mode_returns_only_names_and_counts(api, owner_lists):
    response = api.get(LISTS, {"simple": "true"})

    assert response.status_code == 200
    assert response.json() == [{"name": "Beta", "count": 1}, {"name": "Newsletter", "count": 3}]


def test_outsider_sees_none_of_the_owners_lists(outsider_api, owner_lists, outsider):
    make_list(outsider, "Mine")

    response = outsider_api.get(LISTS, {"simple": "true"})

    assert response.status_code == 200
    assert response.json() == [{"name": "Mine", "count": 0}]


def test_superuser_sees_every_owners_lists(superuser_api, owner_lists, outsider):
    make_list(outsider, "Newsletter")

    response = superuser_api.get(LISTS)

    assert response.status_code == 200
    assert sorted((row["owner"], row["name"]) for row in response.json()) == [
        ("outsider", "Newsletter"), ("owner", "Beta"), ("owner", "Newsletter"),
    ]


def test_anonymous_caller_cannot_list_lists(anon_api, owner_lists):
    response = anon_api.get(LISTS)

    assert response.status_code == 401
    assert "detail" in response.json()


def test_user_without_permissions_cannot_list_lists(no_perms_api, owner_lists):
    response = no_perms_api.get(LISTS)

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED


def test_simple_must_be_a_boolean(api, owner_lists):
    response = api.get(LISTS, {"simple": "perhaps"})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("simple:")


def test_owner_creates_a_list_and_the_creation_is_audited(api, owner):
    response = api.post(LISTS, {"name": "VIP", "description": "Best customers", "key_field": "phone"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "VIP"
    assert body["count"] == 0
    assert body["key_field"] == "phone"
    assert body["owner"] == "owner"
    stored = SubscriberList.objects.get(pk=body["id"])
    assert (stored.owner, stored.name, stored.description, stored.key_field) == (owner, "VIP", "Best customers", "phone")
    row = AuditLog.objects.get(entity_type="list", entity_id=str(stored.pk))
    assert (row.action, row.actor, row.owner) == ("create", owner, owner)
    assert row.after["name"] == "VIP"
    assert row.metadata["source"] == "api"
    assert row.metadata["ip"] == "127.0.0.1"


def test_a_new_list_is_keyed_on_email_by_default(api):
    response = api.post(LISTS, {"name": "Plain"}, format="json")

    assert response.status_code == 201
    assert SubscriberList.objects.get(name="Plain").key_field == "email"


def test_creating_a_list_with_an_existing_name_is_a_conflict(api, owner_lists):
    before = db_state()

    response = api.post(LISTS, {"name": "Newsletter"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "List 'Newsletter' already exists", "field": "name"}
    assert db_state() == before


def test_two_owners_may_use_the_same_list_name(outsider_api, owner_lists, outsider):
    response = outsider_api.post(LISTS, {"name": "Newsletter"}, format="json")

    assert response.status_code == 201
    assert SubscriberList.objects.filter(name="Newsletter").count() == 2
    assert SubscriberList.objects.get(name="Newsletter", owner=outsider).subscriber_count == 0


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "Fine", "key_field": "fax"}, "key_field"),
    ],
)
def test_bad_list_input_is_refused_naming_the_field(api, payload, field):
    before = db_state()

    response = api.post(LISTS, payload, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    assert db_state() == before


def test_invalid_json_body_is_refused_when_creating_a_list(api):
    before = db_state()

    response = post_raw(api, LISTS, '{"name": "Broken"')

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert db_state() == before


def test_html_in_a_list_name_is_stored_verbatim_and_returned_as_json(api):
    # No '/' in it: list names travel in URLs, so a slash is refused on its own account.
    name = '<img src=x onerror="alert(1)"> & <b>co'

    response = api.post(LISTS, {"name": name}, format="json")

    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content)["name"] == name
    assert SubscriberList.objects.get().name == name
    listed = api.get(LISTS, {"simple": "true"})
    assert listed.json() == [{"name": name, "count": 0}]


def test_anonymous_caller_cannot_create_a_list(anon_api, db):
    response = anon_api.post(LISTS, {"name": "Nope"}, format="json")

    assert response.status_code == 401
    assert not SubscriberList.objects.exists()


def test_user_without_permissions_cannot_create_a_list(no_perms_api):
    response = no_perms_api.post(LISTS, {"name": "Nope"}, format="json")

    assert response.status_code == 403
    assert not SubscriberList.objects.exists()
    assert not AuditLog.objects.exists()
