"""POST /api/v1/subscribers/, GET/PUT/DELETE /api/v1/subscribers/{id}."""

import json

import pytest

from audit.models import AuditLog
from subscribers.models import Subscriber, SubscriberList, Suppression
from subscribers.tests.helpers import (
    BASE,
    LISTS,
    PERMISSION_DENIED,
    add,
    db_state,
    make_list,
    post_raw,
    subscriber_url,
)


@pytest.fixture
def news(owner):
    return make_list(owner, "News")


@pytest.fixture
def ann(news):
    return add(news, email="ann@example.com", name="Ann", custom_fields={"plan": "free"})


# --- create --------------------------------------------------------------------------------------


def test_owner_adds_a_subscriber_to_a_list_created_on_first_use(api, owner):
    payload = {
        "list": "Newsletter",
        "email": "  NewUser@Example.COM ",
        "status": "active",
        "standard_fields": {"first_name": "Alice"},
        "custom_fields": {"plan": "pro"},
    }

    response = api.post(BASE, payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["email"], body["list"], body["status"], body["name"]) == (
        "newuser@example.com", "Newsletter", "active", "Alice",
    )
    assert body["_id"] == str(body["id"])
    stored = Subscriber.objects.get(pk=body["id"])
    assert (stored.key, stored.standard_fields, stored.custom_fields) == (
        "newuser@example.com", {"first_name": "Alice"}, {"plan": "pro"},
    )
    assert stored.list.owner == owner
    assert stored.list.subscriber_count == 1
    assert list(AuditLog.objects.order_by("id").values_list("action", "entity_type")) == [
        ("create", "list"), ("create", "subscriber"),
    ]
    row = AuditLog.objects.get(entity_type="subscriber")
    assert (row.entity_id, row.actor, row.owner) == (str(stored.pk), owner, owner)
    assert row.after["email"] == "newuser@example.com"


def test_adding_to_an_existing_list_increments_its_count(api, ann, news):
    response = api.post(BASE, {"list": "News", "email": "bo@example.com"}, format="json")

    assert response.status_code == 201
    news.refresh_from_db()
    assert news.subscriber_count == 2
    assert SubscriberList.objects.count() == 1


def test_the_name_defaults_to_first_and_last_name(api):
    payload = {"list": "News", "email": "al@example.com", "standard_fields": {"first_name": "Al", "last_name": "Bee"}}

    response = api.post(BASE, payload, format="json")

    assert response.json()["name"] == "Al Bee"
    assert Subscriber.objects.get().name == "Al Bee"


def test_adding_an_address_already_on_the_list_is_a_conflict(api, ann):
    before = db_state()

    response = api.post(BASE, {"list": "News", "email": "ANN@example.com"}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Subscriber 'ann@example.com' already exists in list 'News'",
        "field": "email",
        "id": ann.pk,
    }
    assert db_state() == before


def test_the_same_address_may_be_on_two_lists(api, ann):
    response = api.post(BASE, {"list": "Other", "email": "ann@example.com"}, format="json")

    assert response.status_code == 201
    assert Subscriber.objects.filter(email="ann@example.com").count() == 2


def test_a_phone_keyed_list_stores_numbers_in_e164(api):
    api.post(LISTS, {"name": "Texts", "key_field": "phone"}, format="json")

    response = api.post(BASE, {"list": "Texts", "phone": "(415) 555-2671"}, format="json")

    assert response.status_code == 201
    stored = Subscriber.objects.get(pk=response.json()["id"])
    assert (stored.phone, stored.key) == ("+14155552671", "+14155552671")


def test_creating_a_subscriber_with_a_suppressing_status_suppresses_the_address(api, owner):
    response = api.post(BASE, {"list": "News", "email": "gone@example.com", "status": "bounced"}, format="json")

    assert response.status_code == 201
    suppression = Suppression.objects.get()
    assert (suppression.owner, suppression.channel, suppression.address, suppression.reason) == (
        owner, "email", "gone@example.com", "bounced",
    )


@pytest.mark.parametrize(
    "payload, field, message",
    [
        ({"list": "News", "email": "not-an-email"}, "email", "email: 'not-an-email' is not a valid email address"),
        ({"list": "News", "email": ""}, "email", "email: is required"),
        ({"list": "News", "name": "No Address"}, "email", "email: is required"),
        ({"email": "x@example.com"}, "list", "list: This field is required."),
        ({"list": "News", "email": "x@example.com", "status": "sleeping"}, "status", None),
        ({"list": "News", "email": "x@example.com", "custom_fields": "plan=gold"}, "custom_fields", None),
        ({"list": "News", "email": "x@example.com", "name": "n" * 201}, "name", None),
    ],
)
def test_bad_subscriber_input_is_refused_naming_the_field_and_nothing_is_written(api, payload, field, message):
    before = db_state()

    response = api.post(BASE, payload, format="json")

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}:")
    if message:
        assert detail == message
    assert db_state() == before  # not even the list named in the payload


def test_a_bad_phone_on_a_phone_keyed_list_is_refused_naming_phone(api):
    api.post(LISTS, {"name": "Texts", "key_field": "phone"}, format="json")
    before = db_state()

    response = api.post(BASE, {"list": "Texts", "phone": "12345"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "phone: '12345' is not a valid phone number", "field": "phone"}
    assert db_state() == before


def test_invalid_json_body_is_refused_when_adding_a_subscriber(api):
    before = db_state()

    response = post_raw(api, BASE, '{"list": "News", "email": ')

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert db_state() == before


def test_html_in_a_name_is_stored_verbatim_and_returned_as_json(api):
    name = '<script>alert("pwned")</script>'

    response = api.post(BASE, {"list": "News", "email": "x@example.com", "name": name}, format="json")

    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content)["name"] == name
    assert Subscriber.objects.get().name == name


def test_a_huge_integer_in_a_custom_field_is_kept_exactly(api):
    body = '{"list": "News", "email": "big@example.com", "custom_fields": {"points": 1000000000000000000000000000001}}'

    response = post_raw(api, BASE, body)

    assert response.status_code == 201
    assert Subscriber.objects.get().custom_fields == {"points": 10**30 + 1}
    assert json.loads(response.content)["custom_fields"]["points"] == 10**30 + 1


def test_an_overflowing_number_in_a_custom_field_is_left_out_with_a_warning(api):
    # 1e400 parses to float('inf'), which PostgreSQL's jsonb cannot store: only the key decides
    # whether a subscriber is taken, so it is taken without that field, and the answer says so.
    api.raise_request_exception = False

    response = post_raw(api, BASE, '{"list": "News", "email": "inf@example.com", "custom_fields": {"score": 1e400}}')

    assert response.status_code == 201
    assert response.json()["warnings"] == [
        {"field": "custom_fields.score", "value": "Infinity", "reason": "must be a finite number"}
    ]
    assert Subscriber.objects.get(email="inf@example.com").custom_fields == {}


def test_a_bad_phone_or_nested_value_is_left_out_and_the_subscriber_created(api):
    response = api.post(BASE, {"list": "News", "email": "Renée@Bücher.example", "phone": "+1-999-555-0100",
                               "custom_fields": {"address": {"city": "Paris"}, "plan": "pro"}}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["email"], body["phone"], body["custom_fields"]) == ("renée@bücher.example", "", {"plan": "pro"})
    assert [w["field"] for w in body["warnings"]] == ["phone", "custom_fields.address"]


def test_outsider_adding_to_a_list_name_the_owner_uses_gets_a_list_of_their_own(outsider_api, ann, news, outsider):
    response = outsider_api.post(BASE, {"list": "News", "email": "ann@example.com"}, format="json")

    assert response.status_code == 201
    created = Subscriber.objects.get(pk=response.json()["id"])
    assert created.list.owner == outsider
    assert created.list_id != news.pk
    news.refresh_from_db()
    assert news.subscriber_count == 1


def test_anonymous_caller_cannot_add_a_subscriber(anon_api, db):
    before = db_state()

    response = anon_api.post(BASE, {"list": "News", "email": "x@example.com"}, format="json")

    assert response.status_code == 401
    assert db_state() == before


def test_user_without_permissions_cannot_add_a_subscriber(no_perms_api):
    before = db_state()

    response = no_perms_api.post(BASE, {"list": "News", "email": "x@example.com"}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
    assert db_state() == before


# --- read ----------------------------------------------------------------------------------------


def test_owner_reads_one_subscriber(api, ann):
    response = api.get(subscriber_url(ann.pk))

    assert response.status_code == 200
    assert (response.json()["email"], response.json()["list"]) == ("ann@example.com", "News")


def test_outsider_cannot_read_a_subscriber_and_learns_nothing(outsider_api, ann):
    hidden = outsider_api.get(subscriber_url(ann.pk))
    missing = outsider_api.get(subscriber_url(ann.pk + 1000))

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == {"detail": f"Subscriber '{ann.pk}' not found"}


def test_anonymous_caller_cannot_read_a_subscriber(anon_api, ann):
    assert anon_api.get(subscriber_url(ann.pk)).status_code == 401


def test_user_without_permissions_cannot_read_a_subscriber(no_perms_api, ann):
    assert no_perms_api.get(subscriber_url(ann.pk)).status_code == 403


# --- update --------------------------------------------------------------------------------------


def test_owner_updates_a_subscriber_and_the_change_is_audited_with_before_and_after(api, ann, owner):
    response = api.put(subscriber_url(ann.pk), {"name": "Ann Lee", "custom_fields": {"plan": "pro"}}, format="json")

    assert response.status_code == 200
    assert response.json()["message"] == "Subscriber updated successfully"
    assert response.json()["subscriber"]["name"] == "Ann Lee"
    ann.refresh_from_db()
    assert (ann.name, ann.custom_fields, ann.email) == ("Ann Lee", {"plan": "pro"}, "ann@example.com")
    row = AuditLog.objects.get(action="update", entity_type="subscriber")
    assert row.entity_id == str(ann.pk)
    assert row.actor == owner
    assert row.before["name"] == "Ann" and row.before["custom_fields"] == {"plan": "free"}
    assert row.after["name"] == "Ann Lee" and row.after["custom_fields"] == {"plan": "pro"}


def test_changing_the_email_changes_the_key(api, ann):
    response = api.put(subscriber_url(ann.pk), {"email": "Ann.New@Example.com"}, format="json")

    assert response.status_code == 200
    ann.refresh_from_db()
    assert (ann.email, ann.key) == ("ann.new@example.com", "ann.new@example.com")


def test_moving_a_subscriber_to_another_list_moves_the_counts(api, ann, news, owner):
    response = api.put(subscriber_url(ann.pk), {"list": "Archive"}, format="json")

    assert response.status_code == 200
    archive = SubscriberList.objects.get(owner=owner, name="Archive")
    ann.refresh_from_db()
    news.refresh_from_db()
    assert ann.list == archive
    assert (news.subscriber_count, archive.subscriber_count) == (0, 1)


def test_changing_the_email_to_one_already_on_the_list_is_a_conflict(api, ann, news):
    add(news, email="bo@example.com")
    before = db_state()

    response = api.put(subscriber_url(ann.pk), {"email": "bo@example.com"}, format="json")

    assert response.status_code == 409
    assert response.json()["detail"] == "Subscriber 'bo@example.com' already exists in list 'News'"
    assert response.json()["field"] == "email"
    assert db_state() == before


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"email": "broken@"}, "email"),
        ({"email": ""}, "email"),
        ({"status": "sleeping"}, "status"),
        ({"standard_fields": ["first_name"]}, "standard_fields"),
    ],
)
def test_bad_update_input_is_refused_naming_the_field_and_nothing_changes(api, ann, payload, field):
    before = db_state()

    response = api.put(subscriber_url(ann.pk), payload, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    assert db_state() == before


def test_a_bad_update_that_names_a_new_list_does_not_leave_that_list_behind(api, ann):
    before = db_state()

    response = api.put(subscriber_url(ann.pk), {"list": "Fresh", "email": "nope"}, format="json")

    assert response.status_code == 400
    assert db_state() == before


def test_invalid_json_body_is_refused_when_updating(api, ann):
    before = db_state()

    response = post_raw(api, subscriber_url(ann.pk), "{name: Ann}", method="PUT")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert db_state() == before


def test_an_overflowing_number_in_an_update_is_left_out_with_a_warning(api, ann):
    api.raise_request_exception = False

    response = post_raw(api, subscriber_url(ann.pk), '{"custom_fields": {"score": -1e999, "plan": "x"}}', method="PUT")

    assert response.status_code == 200
    assert [w["field"] for w in response.json()["warnings"]] == ["custom_fields.score"]
    ann.refresh_from_db()
    assert "score" not in ann.custom_fields and ann.custom_fields["plan"] == "x"


def test_updating_the_status_to_unsubscribed_suppresses_the_address(api, ann, owner):
    response = api.put(subscriber_url(ann.pk), {"status": "unsubscribed"}, format="json")

    assert response.status_code == 200
    assert Suppression.objects.filter(
        owner=owner, channel="email", address="ann@example.com", reason="unsubscribed"
    ).exists()


def test_outsider_cannot_update_a_subscriber(outsider_api, ann):
    before = db_state()

    response = outsider_api.put(subscriber_url(ann.pk), {"name": "Hacked"}, format="json")

    assert response.status_code == 404
    assert db_state() == before


def test_anonymous_caller_cannot_update_a_subscriber(anon_api, ann):
    before = db_state()

    assert anon_api.put(subscriber_url(ann.pk), {"name": "Hacked"}, format="json").status_code == 401
    assert db_state() == before


def test_user_without_permissions_cannot_update_a_subscriber(no_perms_api, ann):
    before = db_state()

    assert no_perms_api.put(subscriber_url(ann.pk), {"name": "Hacked"}, format="json").status_code == 403
    assert db_state() == before


# --- delete --------------------------------------------------------------------------------------


def test_owner_deletes_a_subscriber_and_the_deletion_is_audited(api, ann, news, owner):
    response = api.delete(subscriber_url(ann.pk))

    assert response.status_code == 200
    assert response.json() == {"message": "Subscriber deleted successfully"}
    assert not Subscriber.objects.filter(pk=ann.pk).exists()
    news.refresh_from_db()
    assert news.subscriber_count == 0
    row = AuditLog.objects.get(action="delete", entity_type="subscriber")
    assert (row.entity_id, row.actor, row.owner) == (str(ann.pk), owner, owner)
    assert row.before["email"] == "ann@example.com"


def test_deleting_a_subscriber_twice_gives_404(api, ann):
    api.delete(subscriber_url(ann.pk))

    response = api.delete(subscriber_url(ann.pk))

    assert response.status_code == 404
    assert AuditLog.objects.filter(action="delete").count() == 1


def test_outsider_cannot_delete_a_subscriber(outsider_api, ann):
    before = db_state()

    response = outsider_api.delete(subscriber_url(ann.pk))

    assert response.status_code == 404
    assert db_state() == before


def test_anonymous_caller_cannot_delete_a_subscriber(anon_api, ann):
    before = db_state()

    assert anon_api.delete(subscriber_url(ann.pk)).status_code == 401
    assert db_state() == before


def test_user_without_permissions_cannot_delete_a_subscriber(no_perms_api, ann):
    before = db_state()

    assert no_perms_api.delete(subscriber_url(ann.pk)).status_code == 403
    assert db_state() == before


def test_an_id_beyond_the_database_range_is_simply_not_found(api, ann):
    response = api.get(subscriber_url(10**23))

    assert response.status_code == 404
    assert response.json() == {"detail": f"Subscriber '{10**23}' not found"}
