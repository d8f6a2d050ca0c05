from audit.models import AuditLog
from campaigns.unsubscribe import unsubscribe_token
from subscribers.models import Subscriber, Suppression
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory


def test_one_click_post_unsubscribes_at_once_without_csrf(owner, db):
    from django.test import Client

    sub = SubscriberFactory(list=SubscriberListFactory(owner=owner), email="ann@x.io")
    other_owner_sub = SubscriberFactory(email="ann@x.io")
    token = unsubscribe_token(owner_id=owner.pk, channel="email", address="ann@x.io")
    response = Client(enforce_csrf_checks=True).post(f"/u/{token}", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    assert Subscriber.objects.get(pk=sub.pk).status == "unsubscribed"
    assert Subscriber.objects.get(pk=other_owner_sub.pk).status == "active"  # another owner's list
    assert Suppression.objects.filter(owner=owner, channel="email", address="ann@x.io", reason="unsubscribed").exists()
    assert AuditLog.objects.filter(entity_type="suppression", owner_id=owner.pk, metadata__source="unsubscribe").exists()


def test_get_shows_a_confirmation_and_changes_nothing(client, owner):
    sub = SubscriberFactory(list=SubscriberListFactory(owner=owner), email="bo@x.io")
    token = unsubscribe_token(owner_id=owner.pk, channel="email", address="bo@x.io")
    response = client.get(f"/u/{token}")
    assert response.status_code == 200 and b"Unsubscribe?" in response.content and b"bo@x.io" in response.content
    assert Subscriber.objects.get(pk=sub.pk).status == "active" and not Suppression.objects.exists()


def test_a_tampered_token_is_refused(client, owner):
    token = unsubscribe_token(owner_id=owner.pk, channel="email", address="bo@x.io")
    response = client.post(f"/u/{token[:-2]}xx")
    assert response.status_code == 404 and not Suppression.objects.exists()
