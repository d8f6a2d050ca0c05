"""POST /api/v1/subscribers/bulk: many subscribers in one call, bad records named by position."""

import json

import pytest

from audit.models import AuditLog
from subscribers.models import Subscriber, SubscriberList, Suppression
from subscribers.tests.helpers import BULK, LISTS, PERMISSION_DENIED, add, db_state, make_list, post_raw


def bulk(client, records, list_name="News"):
    return client.post(BULK, {"list_name": list_name, "subscribers": records}, format="json")


def test_owner_bulk_creates_subscribers_with_one_summarising_audit_row(api, owner):
    records = [{"email": f"p{n}@example.com", "name": f"P{n}"} for n in range(3)]

    response = bulk(api, records)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "message": "Bulk upload completed",
        "processed": 3,
        "failed": 0,
        "errors": [],
        "warning_count": 0,
        "warnings": [],
        "created": 3,
        "updated": 0,
        "duplicates": 0,
    }
    news = SubscriberList.objects.get(owner=owner, name="News")
    assert news.subscriber_count == 3
    assert sorted(news.subscribers.values_list("email", flat=True)) == [f"p{n}@example.com" for n in range(3)]
    row = AuditLog.objects.get(action="import")
    assert (row.entity_type, row.entity_id, row.actor, row.owner) == ("list", str(news.pk), owner, owner)
    assert row.metadata["created"] == 3
    assert not AuditLog.objects.filter(entity_type="subscriber").exists()


def test_bulk_updates_subscribers_already_on_the_list(api, owner):
    news = make_list(owner, "News")
    ann = add(news, email="ann@example.com", name="Old")
    created_at = ann.created_at

    response = bulk(api, [{"email": "ANN@example.com", "name": "New", "plan": "gold"}, {"email": "bo@example.com"}])

    body = response.json()
    assert (body["created"], body["updated"], body["failed"]) == (1, 1, 0)
    ann.refresh_from_db()
    news.refresh_from_db()
    assert (ann.name, ann.custom_fields, ann.created_at) == ("New", {"plan": "gold"}, created_at)
    assert news.subscriber_count == 2


def test_a_repeated_key_within_one_payload_keeps_the_first_and_counts_a_duplicate(api, owner):
    records = [
        {"email": "ann@example.com", "name": "First"},
        {"email": "bo@example.com"},
        {"email": " Ann@Example.com ", "name": "Second"},
    ]

    response = bulk(api, records)

    body = response.json()
    assert (body["created"], body["duplicates"], body["failed"]) == (2, 1, 0)
    assert Subscriber.objects.get(email="ann@example.com").name == "First"
    assert SubscriberList.objects.get(owner=owner, name="News").subscriber_count == 2
    assert AuditLog.objects.get(action="import").metadata["duplicates"] == 1


def test_bad_records_are_named_by_position_and_field_and_good_ones_are_stored(api):
    records = [
        {"email": "ok@example.com"},
        {"email": "nope"},
        {"name": "No address"},
        "just a string",
        {"email": "nested@example.com", "plan": {"tier": "gold"}},
        {"email": "also-ok@example.com", "status": "sleeping"},
    ]

    response = bulk(api, records)

    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == [
        "record 1: email: 'nope' is not a valid email address",
        "record 2: email: is required",
        "record 3: record: must be a JSON object",
        "record 5: status: 'sleeping' is not a valid status (one of: active, inactive, unsubscribed, bounced)",
    ]
    assert (body["failed"], body["processed"], body["created"]) == (4, 2, 2)
    # Only the key decides: the record with a nested value is kept without that field.
    assert body["warnings"] == [{"record": 4, "field": "plan", "value": '{"tier": "gold"}',
                                 "reason": "must be a string, number, boolean or null"}]
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == ["nested@example.com", "ok@example.com"]


def test_bulk_keeps_records_with_a_bad_phone_and_takes_internationalized_addresses(api):
    records = [
        {"email": "renée.lee6@outlook.com", "phone": "+1-999-555-0100"},
        {"email": "user@bücher.example", "phone": "+39 06 1234 5678"},
        {"email": "USER@xn--bcher-kva.example", "name": "Same key"},
    ]

    body = bulk(api, records).json()

    assert (body["created"], body["failed"], body["duplicates"], body["warning_count"]) == (2, 0, 1, 1)
    assert body["warnings"][0]["record"] == 0 and body["warnings"][0]["field"] == "phone"
    assert Subscriber.objects.get(email="renée.lee6@outlook.com").phone == ""
    assert Subscriber.objects.get(email="user@bücher.example").phone == "+390612345678"


def test_flat_fields_are_sorted_into_standard_and_custom(api):
    bulk(api, [{"email": "al@example.com", "first_name": "Al", "last_name": "Bee", "plan": "gold", "age": 41}])

    stored = Subscriber.objects.get()
    assert stored.standard_fields == {"first_name": "Al", "last_name": "Bee"}
    assert stored.custom_fields == {"plan": "gold", "age": 41}
    assert stored.name == "Al Bee"


def test_bulk_into_a_phone_keyed_list_normalises_numbers(api, owner):
    api.post(LISTS, {"name": "Texts", "key_field": "phone"}, format="json")

    response = bulk(api, [{"phone": "(415) 555-2671"}, {"phone": "+1 415 555 2671"}, {"phone": "12"}], "Texts")

    body = response.json()
    assert (body["created"], body["duplicates"], body["failed"]) == (1, 1, 1)
    assert body["errors"] == ["record 2: phone: '12' is not a valid phone number"]
    assert list(Subscriber.objects.values_list("key", flat=True)) == ["+14155552671"]


def test_bulk_unsubscribed_records_are_suppressed(api, owner):
    bulk(api, [{"email": "gone@example.com", "status": "unsubscribed"}, {"email": "here@example.com"}])

    assert list(Suppression.objects.values_list("owner", "channel", "address", "reason")) == [
        (owner.pk, "email", "gone@example.com", "unsubscribed"),
    ]


def test_a_huge_integer_in_a_bulk_record_is_kept_exactly(api):
    body = '{"list_name": "News", "subscribers": [{"email": "big@example.com", "points": 123456789012345678901234567890}]}'

    response = post_raw(api, BULK, body)

    assert response.status_code == 200
    assert Subscriber.objects.get().custom_fields == {"points": 123456789012345678901234567890}


def test_an_overflowing_number_in_a_bulk_record_is_refused_naming_the_record(api):
    before = db_state()

    response = post_raw(api, BULK, '{"list_name": "News", "subscribers": [{"email": "x@example.com", "n": 1e400}]}')

    assert response.status_code == 400
    assert response.json()["detail"].startswith("subscribers.0:")
    assert db_state() == before


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"list_name": "News", "subscribers": []}, "subscribers"),
        ({"list_name": "News", "subscribers": {"email": "x@example.com"}}, "subscribers"),
        ({"list_name": "News"}, "subscribers"),
        ({"subscribers": [{"email": "x@example.com"}]}, "list_name"),
        ({"list_name": "", "subscribers": [{"email": "x@example.com"}]}, "list_name"),
    ],
)
def test_a_malformed_bulk_payload_is_refused_naming_the_field(api, payload, field):
    before = db_state()

    response = api.post(BULK, payload, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    assert db_state() == before


def test_more_than_ten_thousand_records_are_refused_before_anything_is_written(api):
    before = db_state()
    records = [{"email": f"p{n}@example.com"} for n in range(10_001)]

    response = api.post(BULK, {"list_name": "Huge", "subscribers": records}, format="json")

    assert response.status_code == 400
    assert response.json()["field"] == "subscribers"
    assert response.json()["detail"].startswith("subscribers: at most 10,000 records")
    assert db_state() == before


def test_invalid_json_body_is_refused_for_bulk(api):
    before = db_state()

    response = post_raw(api, BULK, '{"list_name": "News", "subscribers": [{"email": "x@example.com"},]}')

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert db_state() == before


def test_html_in_bulk_names_is_stored_verbatim(api):
    name = "<img src=x onerror=alert(1)>"

    bulk(api, [{"email": "x@example.com", "name": name}])

    assert Subscriber.objects.get().name == name
    page = api.get("/api/v1/subscribers/list/News")
    assert json.loads(page.content)["subscribers"][0]["name"] == name


def test_outsider_bulk_to_a_list_name_the_owner_uses_never_touches_the_owners_list(outsider_api, owner, outsider):
    news = make_list(owner, "News")
    ann = add(news, email="ann@example.com", name="Owner's Ann")

    response = bulk(outsider_api, [{"email": "ann@example.com", "name": "Overwritten?"}])

    assert response.json()["created"] == 1
    ann.refresh_from_db()
    news.refresh_from_db()
    assert (ann.name, news.subscriber_count) == ("Owner's Ann", 1)
    assert SubscriberList.objects.get(owner=outsider, name="News").subscriber_count == 1


def test_anonymous_caller_cannot_bulk_upload(anon_api, db):
    before = db_state()

    assert bulk(anon_api, [{"email": "x@example.com"}]).status_code == 401
    assert db_state() == before


def test_user_without_permissions_cannot_bulk_upload(no_perms_api):
    before = db_state()

    response = bulk(no_perms_api, [{"email": "x@example.com"}])

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
    assert db_state() == before
