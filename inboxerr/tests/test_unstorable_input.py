"""Text PostgreSQL cannot store (NUL characters, lone surrogates), deep nesting, duplicate keys and
NaN, sent to the API in a body, a query string or an address: a 400 naming where it was, nothing
stored; never a 500 from the database."""

import pytest

from subscribers.models import Subscriber, SubscriberList, Suppression
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/subscribers/"


def _post_raw(client, url: str, body: bytes):
    return client.generic("POST", url, body, content_type="application/json")


@pytest.mark.parametrize(("body", "where"), [
    (b'{"list": "News", "email": "a@x.io", "name": "Ann\\u0000Lee"}', "name"),
    (b'{"list": "News", "email": "a@x.io", "name": "\\ud800"}', "name"),
    (b'{"list": "News", "email": "a@x.io", "custom_fields": {"plan": "gold\\u0000"}}', "custom_fields.plan"),
    (b'{"list": "News", "email": "a@x.io", "custom_fields": {"pl\\u0000an": "gold"}}', "custom_fields.pl"),
    (b'{"list": "News", "email": "a@x.io", "standard_fields": {"city": "\\udfff"}}', "standard_fields.city"),
])
def test_a_new_subscriber_with_unstorable_text_is_refused_naming_the_value(api, owner, body, where):
    response = _post_raw(api, BASE, body)
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(where)
    assert not Subscriber.objects.exists() and not SubscriberList.objects.exists()


def test_bulk_records_name_the_bad_record(api, owner):
    body = (b'{"list_name": "News", "subscribers": [{"email": "a@x.io"}, {"email": "b@x.io", '
            b'"name": "B\\u0000"}]}')
    response = _post_raw(api, f"{BASE}bulk", body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("subscribers[1].name: NUL characters are not allowed")
    assert not Subscriber.objects.exists()


def test_an_update_with_a_nul_changes_nothing(api, owner):
    subscriber = SubscriberFactory(list=SubscriberListFactory(owner=owner, name="News"), email="a@x.io", name="Ann")
    response = api.generic("PUT", f"{BASE}{subscriber.pk}", b'{"name": "A\\u0000nn"}', content_type="application/json")
    assert response.status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.name == "Ann"


@pytest.mark.parametrize("url", [
    "/api/v1/suppressions/?address=a%00b",
    "/api/v1/subscribers/search?q=x%00y",
    "/api/v1/subscribers/list/News%00",
    "/api/v1/subscribers/lists/News%00/export",
])
def test_a_nul_in_the_address_or_query_is_refused_before_the_database(api, owner, url):
    SubscriberListFactory(owner=owner, name="News")
    response = api.get(url)
    assert response.status_code == 400
    assert "NUL characters are not allowed" in response.json()["detail"]


def test_a_nul_in_a_query_is_refused_for_anonymous_callers_too(anon_api):
    response = anon_api.get("/api/v1/suppressions/?address=a%00b")
    assert response.status_code in (400, 401)
    assert response.status_code != 500


@pytest.mark.parametrize(("body", "message"), [
    (b"[" * 100_000, "nested too deeply"),
    (b'{"list": "News", "email": "a@x.io", "email": "b@x.io"}', "duplicate key 'email'"),
    (b'{"list": "News", "email": "a@x.io", "custom_fields": {"score": NaN}}', "NaN is not a JSON number"),
])
def test_bodies_the_database_would_choke_on_are_a_clear_400(api, owner, body, message):
    response = _post_raw(api, BASE, body)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Subscriber.objects.exists()


def test_clean_text_with_accents_and_html_still_goes_through(api, owner):
    response = _post_raw(api, BASE, '{"list": "News", "email": "a@x.io", "name": "Zoë <b>Lee</b> 🙂"}'.encode())
    assert response.status_code == 201, response.content
    assert Subscriber.objects.get().name == "Zoë <b>Lee</b> 🙂"
    assert not Suppression.objects.exists()
