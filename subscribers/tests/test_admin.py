"""The admin console calls the same services as the API: same rules, same audit rows, same scoping."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from knox.models import AuthToken

from audit.models import AuditLog
from imports.models import ImportJob, ImportStatus
from subscribers.models import Subscriber, SubscriberList, Suppression
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def owned_list(owner):
    return SubscriberListFactory(owner=owner, name="Newsletter")


def test_operator_sees_only_own_subscribers_in_the_changelist(owner_client, owned_list, outsider):
    mine = SubscriberFactory(list=owned_list, email="mine@example.com")
    SubscriberFactory(list=SubscriberListFactory(owner=outsider), email="theirs@example.com")
    response = owner_client.get("/admin/subscribers/subscriber/")
    assert response.status_code == 200
    assert mine.email.encode() in response.content
    assert b"theirs@example.com" not in response.content


def test_outsider_cannot_open_the_owners_subscriber(client, outsider, owned_list):
    subscriber = SubscriberFactory(list=owned_list)
    client.force_login(outsider)
    response = client.get(f"/admin/subscribers/subscriber/{subscriber.pk}/change/", follow=True)
    assert b"doesn" in response.content and subscriber.email.encode() not in response.content


def test_subscriber_search_by_email_prefix(owner_client, owned_list):
    SubscriberFactory(list=owned_list, email="alice@example.com")
    SubscriberFactory(list=owned_list, email="bob@example.com")
    response = owner_client.get("/admin/subscribers/subscriber/", {"q": "alic"})
    assert b"alice@example.com" in response.content
    assert b"bob@example.com" not in response.content


def test_status_action_updates_subscribers_suppresses_and_audits(owner_client, owned_list):
    subs = [SubscriberFactory(list=owned_list) for _ in range(3)]
    response = owner_client.post(
        "/admin/subscribers/subscriber/",
        {"action": "mark_unsubscribed", ACTION_CHECKBOX_NAME: [s.pk for s in subs[:2]]},
        follow=True,
    )
    assert response.status_code == 200
    statuses = dict(Subscriber.objects.values_list("pk", "status"))
    assert [statuses[s.pk] for s in subs] == ["unsubscribed", "unsubscribed", "active"]
    assert set(Suppression.objects.values_list("address", flat=True)) == {subs[0].email, subs[1].email}
    row = AuditLog.objects.get(action="update", entity_type="subscriber")
    assert row.metadata["count"] == 2 and row.metadata["source"] == "admin"


def test_adding_a_subscriber_in_the_admin_goes_through_the_service(owner_client, owned_list):
    response = owner_client.post(
        "/admin/subscribers/subscriber/add/",
        {"list": owned_list.pk, "email": "New@Example.com", "phone": "", "name": "New", "status": "active",
         "standard_fields": "{}", "custom_fields": '{"plan": "pro"}'},
    )
    assert response.status_code == 302, response.content[:2000]
    subscriber = Subscriber.objects.get(list=owned_list)
    assert subscriber.email == "new@example.com" and subscriber.key == "new@example.com"
    owned_list.refresh_from_db()
    assert owned_list.subscriber_count == 1
    assert AuditLog.objects.filter(action="create", entity_type="subscriber", entity_id=str(subscriber.pk)).exists()


def test_admin_form_refuses_a_bad_email_and_a_duplicate(owner_client, owned_list):
    SubscriberFactory(list=owned_list, email="taken@example.com")
    base = {"list": owned_list.pk, "phone": "", "name": "", "status": "active", "standard_fields": "{}", "custom_fields": "{}"}
    bad = owner_client.post("/admin/subscribers/subscriber/add/", {**base, "email": "not-an-email"})
    assert bad.status_code == 200 and b"is not a valid email address" in bad.content
    dup = owner_client.post("/admin/subscribers/subscriber/add/", {**base, "email": "TAKEN@example.com"})
    assert dup.status_code == 200 and b"already on this list" in dup.content
    assert Subscriber.objects.filter(list=owned_list).count() == 1


def test_bulk_delete_in_the_admin_keeps_the_counter_and_audits_once(owner_client, owned_list):
    subs = [SubscriberFactory(list=owned_list) for _ in range(3)]
    owner_client.post(
        "/admin/subscribers/subscriber/",
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [s.pk for s in subs[:2]], "post": "yes"},
    )
    owned_list.refresh_from_db()
    assert owned_list.subscriber_count == 1
    assert Subscriber.objects.filter(list=owned_list).count() == 1
    assert AuditLog.objects.filter(action="delete", entity_type="subscriber").count() == 1


def test_safe_list_delete_asks_for_confirmation_first(owner_client, owned_list):
    SubscriberFactory(list=owned_list)
    response = owner_client.post(
        "/admin/subscribers/subscriberlist/", {"action": "delete_lists", ACTION_CHECKBOX_NAME: [owned_list.pk]}
    )
    assert response.status_code == 200
    assert b"You are about to delete 1 list(s)" in response.content
    assert SubscriberList.objects.filter(pk=owned_list.pk).exists()


def test_safe_list_delete_refuses_active_jobs_without_force(owner_client, owned_list, owner):
    SubscriberFactory(list=owned_list)
    ImportJob.objects.create(owner=owner, list=owned_list, list_name=owned_list.name, status=ImportStatus.PROCESSING)
    data = {"action": "delete_lists", ACTION_CHECKBOX_NAME: [owned_list.pk], "confirmed": "yes", "reason": "tidy"}
    response = owner_client.post("/admin/subscribers/subscriberlist/", data, follow=True)
    assert b"active import job" in response.content
    assert SubscriberList.objects.filter(pk=owned_list.pk).exists()

    response = owner_client.post("/admin/subscribers/subscriberlist/", {**data, "force": "on"}, follow=True)
    assert b"deleted successfully" in response.content
    assert not SubscriberList.objects.filter(pk=owned_list.pk).exists()
    assert not Subscriber.objects.exists() and not ImportJob.objects.exists()
    row = AuditLog.objects.get(action="delete", entity_type="list")
    assert row.metadata["reason"] == "tidy" and row.metadata["jobs_cancelled"] == 1


def test_export_action_streams_the_list(owner_client, owned_list):
    SubscriberFactory(list=owned_list, email="x@example.com", custom_fields={"plan": "=HYPERLINK()"})
    response = owner_client.post(
        "/admin/subscribers/subscriberlist/", {"action": "export_list", ACTION_CHECKBOX_NAME: [owned_list.pk]}
    )
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].endswith(",plan")
    assert "x@example.com" in body and "'=HYPERLINK()" in body


def test_audit_log_admin_is_read_only(owner_client, owned_list):
    SubscriberFactory(list=owned_list)
    assert owner_client.get("/admin/audit/auditlog/").status_code == 200
    assert owner_client.get("/admin/audit/auditlog/add/").status_code == 403


def test_token_admin_shows_a_new_token_once_and_stores_its_digest(client, superuser):
    client.force_login(superuser)
    response = client.post("/admin/knox/authtoken/add/", {"user": superuser.pk, "expiry_days": 7}, follow=True)
    assert response.status_code == 200
    message = next(str(m) for m in response.context["messages"])
    token = message.split("Token for root: ")[1].split(" ")[0]
    assert len(token) == 64
    assert AuthToken.objects.filter(user=superuser).count() == 1
    assert token.encode() not in client.get("/admin/knox/authtoken/").content
