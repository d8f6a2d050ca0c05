"""SMS backends, chosen by settings.SMS_BACKEND like Django's EMAIL_BACKEND:

- HttpGatewayBackend: a generic JSON HTTP gateway (the original Inboxerr used an Android SMS
  gateway): POST SMS_GATEWAY_URL with {to, body, id}, Bearer SMS_GATEWAY_TOKEN, Idempotency-Key.
- TwilioBackend: Twilio's Messages API, or anything that speaks it (TWILIO_API_BASE).
- ConsoleBackend and LocmemBackend for development and tests.

Every backend stores the message's segment count on the OutgoingMessage it sends.
"""

import base64
import http.client
import json
import math
import select
import socket
import sys
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels.base import ChannelBackend, OutgoingMessage, SendError
from campaigns.segments import sms_segments

outbox: list[OutgoingMessage] = []  # locmem: what tests read, like django.core.mail.outbox


class ConsoleBackend(ChannelBackend):
    def send(self, message: OutgoingMessage) -> str:
        message.segments = sms_segments(message.body_text).segments
        sys.stdout.write(f"SMS to {message.recipient} [{message.uid}]: {message.body_text}\n")
        sys.stdout.flush()
        return ""


class LocmemBackend(ChannelBackend):
    idempotent = True

    def send(self, message: OutgoingMessage) -> str:
        message.segments = sms_segments(message.body_text).segments
        outbox.append(message)
        return f"locmem-{len(outbox)}"


# --- HTTP backends -------------------------------------------------------------------------------


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3).
    None when absent or unreadable; never negative."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class _OneWrite:
    """Writes a request's head and its body in one send. http.client writes them apart (two
    syscalls, and on loopback two wake-ups of the provider per request); `body` is appended to
    the head that request() sends."""

    body = b""

    def send(self, data) -> None:
        if self.body:
            data, self.body = data + self.body, b""
        super().send(data)


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):
    pass


class HttpSmsBackend(ChannelBackend):
    """One keep-alive HTTP connection per batch (opened in open(), closed in close()) and the
    mapping of HTTP outcomes to SendError that every HTTP provider shares:

    2xx: sent, the provider's id read from the JSON answer; 429 and 5xx: transient, Retry-After
    honoured; any other 4xx (and 3xx): permanent, with the provider's reason; no connection or a
    request that could not be written: transient (nothing reached the provider); a timeout or a
    lost connection after the request was written: the provider may have taken it, outcome
    unknown.

    The client is the standard library's http.client, not httpx, by measurement: one keep-alive
    JSON POST to campaigns/tests/gateway.py (in another process, 2 cores, 3 runs of 5,000) costs
    ~70-105 us of client CPU with http.client against ~310-350 us with httpx.Client 0.28
    (~5-6.7k vs ~2.2-2.5k requests/s on one connection); this backend's whole send() measures
    ~90-120 us (~4.5-5.7k/s). The target is 2,000 messages/s with two workers on two cores that
    PostgreSQL and the gateway share, ~1 ms per message for everything: httpx alone would take
    a third of it. Keep-alive, TLS, timeouts and the mapping below are all this needs.
    """

    url: str = ""
    id_fields: tuple[str, ...] = ("id",)

    def __init__(self) -> None:
        self.timeout = settings.DISPATCH_SEND_TIMEOUT_SECONDS
        self.connection: http.client.HTTPConnection | None = None
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImproperlyConfigured(f"{type(self).__name__}: '{self.url}' is not an http(s) URL")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.base_path = parts.path.rstrip("/")
        self.query = f"?{parts.query}" if parts.query else ""

    def open(self) -> None:
        if self.connection is None:
            self.connection = self._connect()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _connect(self) -> http.client.HTTPConnection:
        cls = _HTTPSConnection if self.scheme == "https" else _HTTPConnection
        connection = cls(self.host, self.port, timeout=self.timeout)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            raise SendError(f"cannot connect to {self.host}:{connection.port}: {_describe(exc)}") from None
        # A request goes out in one write (_OneWrite), but a large one or TLS records can still
        # split it; without TCP_NODELAY the second part waits ~40 ms for the provider's delayed ACK.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, http.client.HTTPMessage, bytes]:
        if self.connection is None or _dropped(self.connection):
            # The provider closed the idle keep-alive connection: open a fresh one before
            # writing, so a closed socket is never mistaken for a lost answer.
            self.close()
            self.connection = self._connect()
        try:
            self.connection.body = body
            self.connection.request("POST", path, headers={**headers, "Content-Length": str(len(body))})
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendError(f"could not send the request to {self.host}: {_describe(exc)}") from None
        try:
            response = self.connection.getresponse()
            data = response.read()
        except TimeoutError:
            self.close()
            raise SendError(
                f"no answer from {self.host} within {self.timeout}s after the request was sent: outcome unknown",
                unknown=True,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendError(
                f"connection to {self.host} lost after the request was sent ({_describe(exc)}): outcome unknown",
                unknown=True,
            ) from None
        if response.will_close:
            self.close()
        return response.status, response.reason, response.headers, data

    def outcome(self, status: int, reason: str, headers: http.client.HTTPMessage, data: bytes) -> str:
        """The provider's id for a 2xx answer; SendError for anything else."""
        payload = _json_object(data)
        if 200 <= status < 300:
            return next((str(payload[name]) for name in self.id_fields if payload.get(name)), "")
        detail = f"HTTP {status}: {_error_detail(payload, status, reason, data)}"
        if status == 429 or status >= 500:
            raise SendError(detail, retry_after=retry_after_seconds(headers.get("Retry-After")))
        raise SendError(detail, permanent=True)


class HttpGatewayBackend(HttpSmsBackend):
    """A generic JSON SMS gateway. The gateway deduplicates on Idempotency-Key (the message's
    UUID), so a send whose outcome is unknown may be repeated safely."""

    idempotent = True
    id_fields = ("id", "message_id", "messageId")

    def __init__(self) -> None:
        self.url = settings.SMS_GATEWAY_URL
        if not self.url:
            raise ImproperlyConfigured("SMS_GATEWAY_URL must be set to use the HTTP gateway SMS backend")
        super().__init__()
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.SMS_GATEWAY_TOKEN:
            self.headers["Authorization"] = f"Bearer {settings.SMS_GATEWAY_TOKEN}"

    def send(self, message: OutgoingMessage) -> str:
        message.segments = sms_segments(message.body_text).segments
        body = json.dumps({"to": message.recipient, "body": message.body_text, "id": message.uid}).encode()
        headers = {**self.headers, "Idempotency-Key": message.uid}
        return self.outcome(*self.post(f"{self.base_path or '/'}{self.query}", body, headers))


class TwilioBackend(HttpSmsBackend):
    """Twilio's Messages API (form-encoded To/From/Body, basic auth with the account SID and auth
    token), or any service that speaks it at TWILIO_API_BASE.

    The message's UUID goes out as I-Twilio-Idempotency-Token, but Twilio does not promise to
    deduplicate message creation on it, so this backend is not idempotent: a send whose outcome
    is unknown is recorded `unknown` and never resent blindly."""

    idempotent = False
    id_fields = ("sid",)

    def __init__(self) -> None:
        sid, token, sender = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER
        if not (sid and token and sender):
            raise ImproperlyConfigured(
                "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER must be set to use the Twilio SMS backend"
            )
        self.url = settings.TWILIO_API_BASE
        super().__init__()
        self.path = f"{self.base_path}/2010-04-01/Accounts/{quote(sid, safe='')}/Messages.json"
        self.sender = sender
        credentials = base64.b64encode(f"{sid}:{token}".encode()).decode()
        self.headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }

    def send(self, message: OutgoingMessage) -> str:
        message.segments = sms_segments(message.body_text).segments
        body = urlencode({"To": message.recipient, "From": self.sender, "Body": message.body_text}).encode()
        headers = {**self.headers, "I-Twilio-Idempotency-Token": message.uid}
        return self.outcome(*self.post(self.path, body, headers))


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Has the peer closed this idle connection? (Readable while idle means EOF or junk.)"""
    if connection.sock is None:
        return True
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
    return bool(poller.poll(0))


def _json_object(data: bytes) -> dict:
    try:
        payload = json.loads(data) if data else {}
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _error_detail(payload: dict, status: int, reason: str, data: bytes) -> str:
    """The provider's own words for a refusal: Twilio's `message` (+ `code`), a gateway's
    `message` / `error` / `detail`, else the HTTP reason phrase or the start of the body."""
    error = payload.get("error")
    text = payload.get("message") or (error.get("message") if isinstance(error, dict) else error) or payload.get("detail")
    if text:
        code = payload.get("code")
        return f"{text} (code {code})" if code and str(code) not in (str(status), str(text)) else str(text)
    if reason:
        return reason
    return data[:200].decode("utf-8", "replace").strip() or "no reason given"


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
