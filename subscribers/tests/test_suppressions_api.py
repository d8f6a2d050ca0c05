"""GET/POST/DELETE /api/v1/suppressions/: addresses no campaign may message again."""

import pytest

from audit.models import AuditLog
from subscribers.models import Suppression
from subscribers.tests.factories import SuppressionFactory
from subscribers.tests.helpers import PERMISSION_DENIED, SUPPRESSIONS, db_state, post_raw


@pytest.fixture
def blocked(owner, outsider):
    return {
        "ann": SuppressionFactory(owner=owner, channel="email", address="ann@example.com", reason="bounced"),
        "sms": SuppressionFactory(owner=owner, channel="sms", address="+14155552671", reason="unsubscribed"),
        "theirs": SuppressionFactory(owner=outsider, channel="email", address="zed@example.com"),
    }


def addresses(response) -> list[str]:
    return sorted(row["address"] for row in response.json()["results"])


def test_owner_lists_their_suppressions_paginated(api, blocked):
    response = api.get(SUPPRESSIONS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert addresses(response) == ["+14155552671", "ann@example.com"]
    assert set(body["results"][0]) == {"id", "owner", "channel", "address", "reason", "created_at"}


@pytest.mark.parametrize(
    "params, expected",
    [({"channel": "sms"}, ["+14155552671"]), ({"address": "ANN@"}, ["ann@example.com"]), ({"channel": "fax"}, [])],
)
def test_suppressions_filter_by_channel_and_address_prefix(api, blocked, params, expected):
    assert addresses(api.get(SUPPRESSIONS, params)) == expected


def test_outsider_sees_only_their_own_suppressions(outsider_api, blocked):
    assert addresses(outsider_api.get(SUPPRESSIONS)) == ["zed@example.com"]


def test_superuser_sees_every_owners_suppressions(superuser_api, blocked):
    assert superuser_api.get(SUPPRESSIONS).json()["count"] == 3


def test_owner_reads_one_suppression(api, blocked):
    response = api.get(f"{SUPPRESSIONS}{blocked['ann'].pk}/")

    assert response.status_code == 200
    assert (response.json()["address"], response.json()["reason"], response.json()["owner"]) == (
        "ann@example.com", "bounced", "owner",
    )


def test_outsider_cannot_read_the_owners_suppression(outsider_api, blocked):
    assert outsider_api.get(f"{SUPPRESSIONS}{blocked['ann'].pk}/").status_code == 404


def test_owner_suppresses_an_address_normalised_and_audited(api, owner):
    response = api.post(SUPPRESSIONS, {"channel": "email", "address": " Spam@Example.COM "}, format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["address"], response.json()["reason"]) == ("spam@example.com", "manual")
    stored = Suppression.objects.get()
    assert (stored.owner, stored.channel, stored.address, stored.reason) == (owner, "email", "spam@example.com", "manual")
    row = AuditLog.objects.get()
    assert (row.action, row.entity_type, row.entity_id, row.owner) == ("create", "suppression", str(stored.pk), owner)


def test_an_sms_suppression_stores_the_number_in_e164(api):
    response = api.post(SUPPRESSIONS, {"channel": "sms", "address": "(415) 555-2671", "reason": "complained"}, format="json")

    assert response.status_code == 201
    assert Suppression.objects.get().address == "+14155552671"


def test_suppressing_an_address_twice_is_a_conflict(api, blocked):
    before = db_state()

    response = api.post(SUPPRESSIONS, {"channel": "email", "address": "ANN@example.com"}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "ann@example.com is already suppressed for email", "field": "address", "id": blocked["ann"].pk,
    }
    assert db_state() == before


def test_an_address_another_owner_suppressed_can_still_be_suppressed(api, blocked, owner):
    response = api.post(SUPPRESSIONS, {"channel": "email", "address": "zed@example.com"}, format="json")

    assert response.status_code == 201
    assert Suppression.objects.filter(address="zed@example.com").count() == 2


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"channel": "email", "address": "not-an-email"}, "address"),
        ({"channel": "sms", "address": "12"}, "address"),
        ({"channel": "email", "address": ""}, "address"),
        ({"channel": "email"}, "address"),
        ({"channel": "fax", "address": "a@example.com"}, "channel"),
        ({"address": "a@example.com"}, "channel"),
        ({"channel": "email", "address": "a@example.com", "reason": "annoyed"}, "reason"),
    ],
)
def test_bad_suppression_input_is_refused_naming_the_field(api, blocked, payload, field):
    before = db_state()

    response = api.post(SUPPRESSIONS, payload, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    assert db_state() == before


def test_invalid_json_body_is_refused_for_suppressions(api):
    response = post_raw(api, SUPPRESSIONS, "channel=email")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not Suppression.objects.exists()


def test_owner_removes_a_suppression_and_the_removal_is_audited(api, blocked, owner):
    response = api.delete(f"{SUPPRESSIONS}{blocked['ann'].pk}/")

    assert response.status_code == 204
    assert not Suppression.objects.filter(pk=blocked["ann"].pk).exists()
    row = AuditLog.objects.get()
    assert (row.action, row.entity_type, row.owner) == ("delete", "suppression", owner)
    assert row.before == {"channel": "email", "address": "ann@example.com", "reason": "bounced"}


def test_outsider_cannot_remove_the_owners_suppression(outsider_api, blocked):
    before = db_state()

    response = outsider_api.delete(f"{SUPPRESSIONS}{blocked['ann'].pk}/")

    assert response.status_code == 404
    assert db_state() == before


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_anonymous_caller_cannot_use_suppressions(anon_api, blocked, method):
    before = db_state()
    url = f"{SUPPRESSIONS}{blocked['ann'].pk}/" if method == "delete" else SUPPRESSIONS

    response = getattr(anon_api, method)(url, {"channel": "email", "address": "x@example.com"}, format="json")

    assert response.status_code == 401
    assert db_state() == before


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_user_without_permissions_cannot_use_suppressions(no_perms_api, blocked, method):
    before = db_state()
    url = f"{SUPPRESSIONS}{blocked['ann'].pk}/" if method == "delete" else SUPPRESSIONS

    response = getattr(no_perms_api, method)(url, {"channel": "email", "address": "x@example.com"}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
    assert db_state() == before


def test_the_format_suffix_addresses_take_every_method(api, owner):
    # The router also serves /suppressions.json and /suppressions/<id>.json.
    created = api.post("/api/v1/suppressions.json", {"channel": "email", "address": "dot@example.com"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert api.get(f"{SUPPRESSIONS}{pk}.json").json()["address"] == "dot@example.com"
    assert api.delete(f"{SUPPRESSIONS}{pk}.json").status_code == 204
    assert not Suppression.objects.filter(pk=pk).exists()
