"""PATCH /api/v1/subscribers/{id}/status: a status change, and the suppression that unsubscribed
and bounced bring with them."""

import pytest

from audit.models import AuditLog
from subscribers.models import Suppression
from subscribers.tests.factories import SuppressionFactory
from subscribers.tests.helpers import PERMISSION_DENIED, add, db_state, make_list, status_url


@pytest.fixture
def ann(owner):
    return add(make_list(owner, "News"), email="ann@example.com")


def test_owner_deactivates_a_subscriber_without_suppressing_them(api, ann, owner):
    response = api.patch(f"{status_url(ann.pk)}?status=inactive")

    assert response.status_code == 200
    assert response.json() == {"message": "Subscriber status updated to inactive"}
    ann.refresh_from_db()
    assert ann.status == "inactive"
    assert not Suppression.objects.exists()
    row = AuditLog.objects.get(entity_type="subscriber", action="update")
    assert (row.entity_id, row.actor, row.owner) == (str(ann.pk), owner, owner)
    assert (row.before, row.after) == ({"status": "active"}, {"status": "inactive"})


@pytest.mark.parametrize("status", ["unsubscribed", "bounced"])
def test_unsubscribed_or_bounced_suppresses_the_address(api, ann, owner, status):
    response = api.patch(f"{status_url(ann.pk)}?status={status}")

    assert response.status_code == 200
    ann.refresh_from_db()
    assert ann.status == status
    suppression = Suppression.objects.get()
    assert (suppression.owner, suppression.channel, suppression.address, suppression.reason) == (
        owner, "email", "ann@example.com", status,
    )


def test_bouncing_a_subscriber_with_email_and_phone_suppresses_both_channels(api, owner):
    sub = add(make_list(owner, "Texts", key_field="phone"), email="txt@example.com", phone="+14155552671")

    api.patch(f"{status_url(sub.pk)}?status=bounced")

    assert sorted(Suppression.objects.values_list("channel", "address")) == [
        ("email", "txt@example.com"), ("sms", "+14155552671"),
    ]


def test_an_address_already_suppressed_keeps_its_first_reason(api, ann, owner):
    SuppressionFactory(owner=owner, channel="email", address="ann@example.com", reason="complained")

    response = api.patch(f"{status_url(ann.pk)}?status=unsubscribed")

    assert response.status_code == 200
    assert list(Suppression.objects.values_list("address", "reason")) == [("ann@example.com", "complained")]


def test_status_may_come_in_the_body(api, ann):
    response = api.patch(status_url(ann.pk), {"status": "bounced"}, format="json")

    assert response.status_code == 200
    ann.refresh_from_db()
    assert ann.status == "bounced"


def test_superuser_status_change_suppresses_on_the_owners_list(superuser_api, ann, owner, superuser):
    superuser_api.patch(f"{status_url(ann.pk)}?status=unsubscribed")

    assert Suppression.objects.get().owner == owner
    row = AuditLog.objects.get(entity_type="subscriber")
    assert (row.actor, row.owner) == (superuser, owner)


@pytest.mark.parametrize("query", ["?status=sleeping", "?status=", "", "?status=ACTIVE"])
def test_an_unknown_or_missing_status_is_refused_naming_status(api, ann, query):
    before = db_state()

    response = api.patch(f"{status_url(ann.pk)}{query}")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("status:")
    assert db_state() == before


def test_outsider_cannot_change_a_status(outsider_api, ann):
    before = db_state()

    response = outsider_api.patch(f"{status_url(ann.pk)}?status=unsubscribed")

    assert response.status_code == 404
    assert response.json() == {"detail": f"Subscriber '{ann.pk}' not found"}
    assert db_state() == before


def test_anonymous_caller_cannot_change_a_status(anon_api, ann):
    before = db_state()

    assert anon_api.patch(f"{status_url(ann.pk)}?status=unsubscribed").status_code == 401
    assert db_state() == before


def test_user_without_permissions_cannot_change_a_status(no_perms_api, ann):
    before = db_state()

    response = no_perms_api.patch(f"{status_url(ann.pk)}?status=unsubscribed")

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
    assert db_state() == before
