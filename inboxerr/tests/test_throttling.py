"""API throttles: per user (token or session), per client address for calls without valid
credentials, a failed authentication counted like any of those; 429 with Retry-After."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from inboxerr.accounts import api_token_create
from inboxerr.actors import Actor

LISTS = "/api/v1/subscribers/lists"
ELSEWHERE = "203.0.113.7"


def _token(user) -> str:
    return api_token_create(actor=Actor.system("command"), username=user.username)[1]


def _client(token: str | None = None, **defaults) -> APIClient:
    client = APIClient(**defaults)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _assert_throttled(response) -> None:
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    detail = response.json()["detail"]
    assert detail.startswith("Request was throttled.") and "seconds" in detail


def test_a_user_over_the_rate_is_refused_with_retry_after(owner, outsider):
    client = _client(_token(owner))
    with override_settings(API_THROTTLE_USER="3/min"):
        assert [client.get(LISTS).status_code for _ in range(3)] == [200, 200, 200]
        _assert_throttled(client.get(LISTS))
        # The allowance is the user's: another user's token, from the same address, still passes.
        assert _client(_token(outsider)).get(LISTS).status_code == 200


def test_a_session_user_has_the_same_allowance(client, owner):
    client.force_login(owner)
    with override_settings(API_THROTTLE_USER="2/min"):
        assert [client.get(LISTS).status_code for _ in range(2)] == [200, 200]
        _assert_throttled(client.get(LISTS))


@pytest.mark.django_db
def test_anonymous_calls_are_counted_per_address_though_each_is_a_401():
    anonymous = _client()
    with override_settings(API_THROTTLE_ANON="3/min"):
        assert [anonymous.get(LISTS).status_code for _ in range(3)] == [401, 401, 401]
        _assert_throttled(anonymous.get(LISTS))
        assert _client(REMOTE_ADDR=ELSEWHERE).get(LISTS).status_code == 401


def test_repeated_bad_tokens_close_the_address_even_to_a_good_token(owner):
    good = _token(owner)
    guesser = _client("0" * 64)
    with override_settings(API_THROTTLE_ANON="3/min"):
        assert [guesser.get(LISTS).status_code for _ in range(3)] == [401, 401, 401]
        _assert_throttled(guesser.get(LISTS))
        # The next guess is refused unread: a right one from that address gets no further.
        _assert_throttled(_client(good).get(LISTS))
        # Other addresses are not concerned.
        assert _client(good, REMOTE_ADDR=ELSEWHERE).get(LISTS).status_code == 200


def test_an_expired_token_counts_as_a_failed_authentication(owner):
    from datetime import timedelta

    from django.utils import timezone
    from knox.models import AuthToken

    instance, token = api_token_create(actor=Actor.system("command"), username=owner.username)
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    with override_settings(API_THROTTLE_ANON="2/min"):
        assert [_client(token).get(LISTS).status_code for _ in range(2)] == [401, 401]
        _assert_throttled(_client(token).get(LISTS))


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_gets_no_fresh_allowance():
    with override_settings(API_THROTTLE_ANON="2/min"):
        codes = [_client().get(LISTS, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(3)]
    assert codes == [401, 401, 429]


@pytest.mark.django_db
def test_behind_a_proxy_the_address_it_forwarded_is_counted():
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    with override_settings(API_THROTTLE_ANON="2/min", NUM_PROXIES=1):
        first = [_client(**proxy).get(LISTS, HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.1").status_code for _ in range(3)]
        second = _client(**proxy).get(LISTS, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code
    assert first == [401, 401, 429]
    assert second == 401


@pytest.mark.django_db
def test_inbound_sms_is_never_held_back_by_the_address_allowance(settings):
    settings.SMS_INBOUND_SECRET = "inbound-secret"
    gateway = _client()
    with override_settings(API_THROTTLE_ANON="1/min"):
        codes = [gateway.post("/api/v1/sms/inbound", {"from": "+14155552671", "body": "hello"}, format="json").status_code
                 for _ in range(3)]
    assert codes == [401, 401, 401]  # unsigned: refused by the signature check each time, never 429


def test_the_schema_describes_token_authentication_and_the_429(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["components"]["securitySchemes"]["knoxApiToken"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"'}
    lists = schema["paths"]["/api/v1/subscribers/lists"]["get"]
    assert {"knoxApiToken": []} in lists["security"]
    assert lists["responses"]["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert "429" not in schema["paths"]["/api/v1/sms/inbound"]["post"]["responses"]
