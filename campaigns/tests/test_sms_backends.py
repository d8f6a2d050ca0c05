"""The HTTP SMS backends against a real HTTP server on loopback: what goes on the wire, and how
every answer (or silence) maps to a SendError the dispatcher can act on."""

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels.base import OutgoingMessage, SendError
from campaigns.channels.registry import backend_for, is_idempotent
from campaigns.channels.sms import TwilioBackend, retry_after_seconds
from campaigns.tests.smtp import free_port
from campaigns.tests.gateway import GATEWAY_TOKEN, TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, json_gateway, twilio_api

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sms_gateway(settings):
    with json_gateway(settings) as gateway:
        yield gateway


@pytest.fixture
def twilio_gateway(settings):
    with twilio_api(settings) as gateway:
        yield gateway


def _message(to: str = "+14155552671", body: str = "Hi Ann") -> OutgoingMessage:
    return OutgoingMessage(uid=str(uuid.uuid4()), channel="sms", recipient=to, body_text=body)


def _send(message: OutgoingMessage) -> str:
    backend = backend_for("sms")
    with backend:
        return backend.send(message)


def _error(message: OutgoingMessage) -> SendError:
    with pytest.raises(SendError) as raised:
        _send(message)
    return raised.value


# --- The generic JSON gateway ----------------------------------------------------------------------


def test_gateway_backend_posts_json_with_bearer_token_and_idempotency_key(sms_gateway):
    message = _message(body="Your code is 1234 €")
    provider_id = _send(message)

    [request] = sms_gateway.requests()
    assert request.path == "/api/v1/send"
    assert request.headers["Authorization"] == f"Bearer {GATEWAY_TOKEN}"
    assert request.headers["Idempotency-Key"] == message.uid
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"to": "+14155552671", "body": "Your code is 1234 €", "id": message.uid}
    assert provider_id == sms_gateway.delivered()[0].provider_id == "gw-000001"
    assert message.segments == 1


def test_gateway_backend_stores_the_segment_count_on_the_message(sms_gateway):
    long_gsm, emoji = _message(body="x" * 161), _message(body="Hi 😀" + "a" * 68)
    _send(long_gsm)
    _send(emoji)
    assert (long_gsm.segments, emoji.segments) == (2, 2)


def test_gateway_backend_is_idempotent_and_twilio_is_not(settings):
    settings.SMS_BACKEND = "campaigns.channels.sms.HttpGatewayBackend"
    assert is_idempotent("sms") is True
    settings.SMS_BACKEND = "campaigns.channels.sms.TwilioBackend"
    assert is_idempotent("sms") is False


def test_one_keep_alive_connection_serves_a_whole_batch(sms_gateway):
    backend = backend_for("sms")
    backend.open()
    try:
        ids = [backend.send(_message(to=f"+1415555{n:04d}")) for n in range(20)]
    finally:
        backend.close()
    assert len(set(ids)) == 20 and len(sms_gateway.delivered()) == 20
    assert sms_gateway.connections() == 1


def test_a_connection_the_gateway_closed_while_idle_is_reopened_before_the_next_send(sms_gateway):
    sms_gateway.hang_up()
    backend = backend_for("sms")
    with backend:
        backend.send(_message(to="+14155550001"))
        time.sleep(0.05)  # the FIN arrives
        backend.send(_message(to="+14155550002"))  # not mistaken for a lost answer
    assert [item.request.to for item in sms_gateway.delivered()] == ["+14155550001", "+14155550002"]
    assert sms_gateway.connections() == 2


def test_a_repeated_idempotency_key_is_delivered_once(sms_gateway):
    message = _message()
    first, second = _send(message), _send(message)
    assert first == second
    assert sms_gateway.attempts(message.uid) == 2
    assert len(sms_gateway.delivered()) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(sms_gateway, status):
    sms_gateway.fail(status)
    error = _error(_message())
    assert (error.permanent, error.unknown, error.retry_after) == (False, False, None)
    assert error.message.startswith(f"HTTP {status}:")
    assert not sms_gateway.delivered()


def test_503_with_retry_after_is_honoured(sms_gateway):
    sms_gateway.fail(503, retry_after="7")
    assert _error(_message()).retry_after == 7.0


def test_429_is_transient_with_retry_after_in_seconds(sms_gateway):
    sms_gateway.fail(429, retry_after="12")
    error = _error(_message())
    assert (error.permanent, error.unknown, error.retry_after) == (False, False, 12.0)
    assert error.message == "HTTP 429: Too Many Requests"


def test_429_with_retry_after_as_an_http_date(sms_gateway):
    sms_gateway.fail(429, retry_after=format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True))
    assert 27 <= _error(_message()).retry_after <= 30


def test_429_without_retry_after_leaves_the_delay_to_the_backoff(sms_gateway):
    sms_gateway.fail(429)
    error = _error(_message())
    assert (error.permanent, error.retry_after) == (False, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("120", 120.0), (" 3 ", 3.0), ("1.5", 1.5), ("-4", 0.0), ("soon", None), ("", None), (None, None),
     ("nan", None), ("inf", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_values(value, expected):
    assert retry_after_seconds(value) == expected


@pytest.mark.parametrize("status", [400, 404, 409, 410, 422])
def test_other_4xx_is_permanent_with_the_gateways_reason(sms_gateway, status):
    sms_gateway.fail(status, message="The 'to' number is not a valid mobile number")
    error = _error(_message())
    assert (error.permanent, error.unknown) == (True, False)
    assert error.message == f"HTTP {status}: The 'to' number is not a valid mobile number"


def test_a_wrong_token_is_a_permanent_refusal(sms_gateway, settings):
    settings.SMS_GATEWAY_TOKEN = "not-the-token"
    error = _error(_message())
    assert error.permanent and error.message == "HTTP 401: Authentication failed"
    assert not sms_gateway.delivered()


def test_a_4xx_without_a_json_body_keeps_the_http_reason(sms_gateway):
    sms_gateway.fail(403, body=b"<html><body>Forbidden by proxy</body></html>")
    sms_gateway.fail(400, body=b"")
    first, second = _error(_message()), _error(_message())
    assert (first.permanent, first.message) == (True, "HTTP 403: Forbidden")
    assert (second.permanent, second.message) == (True, "HTTP 400: Bad Request")


def test_a_2xx_without_json_is_sent_with_no_provider_id(sms_gateway):
    sms_gateway.fail(202, body=b"queued")  # "fail" only scripts the answer: 202 is a success
    message = _message()
    assert _send(message) == ""
    assert message.segments == 1


def test_no_answer_within_the_timeout_is_an_unknown_outcome(sms_gateway):
    sms_gateway.stall(seconds=1.5)
    started = time.monotonic()
    error = _error(_message())
    assert time.monotonic() - started < 1.2  # gave up at DISPATCH_SEND_TIMEOUT_SECONDS (0.5 s)
    assert (error.unknown, error.permanent) == (True, False)
    assert "outcome unknown" in error.message
    time.sleep(1.2)
    assert len(sms_gateway.delivered()) == 1  # the gateway did take it: why it must not be resent blindly


def test_a_connection_lost_after_the_request_was_written_is_an_unknown_outcome(sms_gateway):
    sms_gateway.drop()
    error = _error(_message())
    assert error.unknown and "lost after the request was sent" in error.message
    assert len(sms_gateway.delivered()) == 1


def test_after_a_timeout_the_next_send_uses_a_fresh_connection(sms_gateway):
    sms_gateway.stall(seconds=1.0)
    backend = backend_for("sms")
    with backend:
        with pytest.raises(SendError):
            backend.send(_message(to="+14155550001"))
        assert backend.send(_message(to="+14155550002")).startswith("gw-")
    assert sms_gateway.connections() == 2


def test_no_listener_is_a_transient_connect_error(settings):
    settings.SMS_BACKEND = "campaigns.channels.sms.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{free_port()}/send"
    backend = backend_for("sms")
    with pytest.raises(SendError) as raised:
        backend.open()
    error = raised.value
    assert (error.permanent, error.unknown) == (False, False)
    assert error.message.startswith("cannot connect to 127.0.0.1")
    with pytest.raises(SendError) as raised:  # and the same from send() when open() was skipped
        backend.send(_message())
    assert not raised.value.unknown and not raised.value.permanent


def test_the_gateway_backend_needs_its_url(settings):
    settings.SMS_BACKEND = "campaigns.channels.sms.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = ""
    with pytest.raises(ImproperlyConfigured, match="SMS_GATEWAY_URL"):
        backend_for("sms")
    settings.SMS_GATEWAY_URL = "ftp://gateway.example/send"
    with pytest.raises(ImproperlyConfigured, match="not an http"):
        backend_for("sms")


# --- The Twilio-compatible backend -----------------------------------------------------------------


def test_twilio_backend_posts_the_form_with_basic_auth_and_idempotency_token(twilio_gateway):
    message = _message(body="Привет, Ann")
    provider_id = _send(message)

    [request] = twilio_gateway.requests()
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    credentials = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.headers["I-Twilio-Idempotency-Token"] == message.uid
    assert parse_qs(request.body.decode()) == {"To": ["+14155552671"], "From": [TWILIO_FROM], "Body": ["Привет, Ann"]}
    assert provider_id == "SM000001"
    assert message.segments == 1


def test_twilio_error_keeps_twilios_message_and_code(twilio_gateway):
    twilio_gateway.fail(400, message="The 'To' number +1415 is not a valid phone number.")
    error = _error(_message())
    assert error.permanent
    assert error.message == "HTTP 400: The 'To' number +1415 is not a valid phone number."


def test_twilio_429_and_5xx_are_transient(twilio_gateway):
    twilio_gateway.fail(429, retry_after="3")
    twilio_gateway.fail(500)
    first, second = _error(_message()), _error(_message())
    assert (first.permanent, first.retry_after) == (False, 3.0)
    assert (second.permanent, second.unknown) == (False, False)


def test_twilio_timeout_is_unknown(twilio_gateway):
    twilio_gateway.stall(seconds=1.0)
    assert _error(_message()).unknown


def test_twilio_wrong_credentials_are_permanent(twilio_gateway, settings):
    settings.TWILIO_AUTH_TOKEN = "wrong"
    assert _error(_message()).permanent


def test_twilio_api_base_may_carry_a_path_prefix(twilio_gateway, settings):
    settings.TWILIO_API_BASE = f"{twilio_gateway.url}/twilio/"
    _send(_message())
    assert twilio_gateway.requests()[0].path == f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


def test_the_twilio_backend_needs_its_credentials_and_sender(settings):
    settings.SMS_BACKEND = "campaigns.channels.sms.TwilioBackend"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER = "AC1", "t", ""
    with pytest.raises(ImproperlyConfigured, match="TWILIO_FROM_NUMBER"):
        TwilioBackend()


def test_console_and_locmem_backends_also_count_segments(settings, capsys, sms_outbox):
    from campaigns.channels.sms import ConsoleBackend, LocmemBackend

    console, locmem = _message(body="€" * 81), _message(body="😀" * 36)
    ConsoleBackend().send(console)
    LocmemBackend().send(locmem)
    assert (console.segments, locmem.segments) == (2, 2)
    assert "SMS to +14155552671" in capsys.readouterr().out


# --- Configuration checked at start ----------------------------------------------------------------


def _start_with(**overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **overrides, "DJANGO_SETTINGS_MODULE": "inboxerr.settings"}
    return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SMS_BACKEND": "campaigns.channels.sms.HttpGatewayBackend", "SMS_GATEWAY_URL": ""}, "SMS_GATEWAY_URL"),
        ({"SMS_BACKEND": "campaigns.channels.sms.TwilioBackend", "TWILIO_ACCOUNT_SID": "AC1",
          "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM_NUMBER": ""}, "TWILIO_FROM_NUMBER"),
        ({"SMS_GATEWAY_URL": "gateway.local/send"}, "SMS_GATEWAY_URL"),
    ],
)
def test_an_sms_backend_without_its_settings_stops_the_process_at_start(overrides, named):
    result = _start_with(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr


def test_a_configured_gateway_backend_starts(sms_gateway):
    result = _start_with(SMS_BACKEND="campaigns.channels.sms.HttpGatewayBackend", SMS_GATEWAY_URL=sms_gateway.url)
    assert result.returncode == 0, result.stderr
