"""A real HTTP server on loopback that plays the SMS gateway (generic JSON or Twilio-style) and,
later, a webhook receiver.

It records every request, deduplicates accepted messages on their idempotency key (as a gateway
that honours `Idempotency-Key` does: a repeat gets the first answer and sends nothing new), and
injects failures on demand:

    gateway.fail(500, times=2)                      # two 500s, then back to normal
    gateway.fail(429, retry_after="2")              # one 429 with Retry-After: 2
    gateway.fail(400, message="invalid number", to="+14155550000")   # only for that recipient
    gateway.stall(seconds=2)                        # answer after the client gave up; the
                                                    # message IS accepted (the ambiguous case)
    gateway.drop()                                  # accept, close without answering
    gateway.hang_up()                               # answer, then close the idle connection

Rules apply in the order they were added, each for `times` matching requests. What happened:
`requests()` (every POST: path, headers, raw body, parsed data, arrival time), `delivered()`
(accepted once per key), `attempts(key)`, `connections()`, `reset()`.

As a webhook receiver: `Gateway()` (no token) answers 200 to a POST on any path and keeps it in
`requests()`; the same rules inject failures.
"""

import base64
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

IDEMPOTENCY_HEADERS = ("Idempotency-Key", "I-Twilio-Idempotency-Token")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    data: dict  # the JSON object or the form fields (first value of each)
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic())

    @property
    def idempotency_key(self) -> str:
        return next((self.headers[name] for name in IDEMPOTENCY_HEADERS if name in self.headers), "")

    @property
    def to(self) -> str:
        return str(self.data.get("to") or self.data.get("To") or "")

    @property
    def text(self) -> str:
        return str(self.data.get("body") or self.data.get("Body") or "")


@dataclass
class Rule:
    status: int = 200
    times: int = 1
    to: str | None = None  # only requests to this recipient
    retry_after: str | None = None
    message: str = ""
    body: bytes | None = None  # a raw (non-JSON) body for the error answer
    delay: float = 0.0  # seconds before answering (a stall longer than the client's timeout)
    hang_up: bool = False  # answer, then close the keep-alive connection without saying so
    drop: bool = False  # accept the message, then close the connection without answering

    def matches(self, request: Request) -> bool:
        return self.times > 0 and (self.to is None or self.to == request.to)


@dataclass
class Accepted:
    provider_id: str
    request: Request


@dataclass
class _State:
    requests: list[Request] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    accepted: dict[str, Accepted] = field(default_factory=dict)  # idempotency key -> first acceptance
    delivered: list[Accepted] = field(default_factory=list)  # what reached the handset, in order
    attempts: Counter = field(default_factory=Counter)  # requests per idempotency key
    connections: int = 0  # TCP connections accepted (keep-alive keeps this low)


class Gateway:
    def __init__(self, *, token: str = "", basic_auth: tuple[str, str] | None = None) -> None:
        self.token = token
        self.basic_auth = basic_auth
        self.state = _State()
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> "Gateway":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()  # wakes stalled handlers
        self.server.shutdown()
        self.server.server_close()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- failure injection -----------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, to: str | None = None, retry_after: str | None = None,
             message: str = "", body: bytes | None = None) -> None:
        """Answer `status` (JSON {"message", "code"}, or `body` as text/plain when given)."""
        with self.lock:
            self.state.rules.append(
                Rule(status=status, times=times, to=to, retry_after=retry_after, message=message, body=body)
            )

    def stall(self, *, seconds: float, times: int = 1, to: str | None = None) -> None:
        with self.lock:
            self.state.rules.append(Rule(status=200, times=times, to=to, delay=seconds))

    def hang_up(self, *, times: int = 1) -> None:
        """Answer normally, then close the connection as an idle keep-alive timeout would."""
        with self.lock:
            self.state.rules.append(Rule(status=200, times=times, hang_up=True))

    def drop(self, *, times: int = 1, to: str | None = None) -> None:
        """Take the message, then close the connection without an answer (a crash mid-reply)."""
        with self.lock:
            self.state.rules.append(Rule(status=200, times=times, to=to, drop=True))

    # --- what happened ---------------------------------------------------------------------------

    def requests(self) -> list[Request]:
        with self.lock:
            return list(self.state.requests)

    def delivered(self) -> list[Accepted]:
        """Messages accepted once each (repeats of an idempotency key are not delivered again)."""
        with self.lock:
            return list(self.state.delivered)

    def connections(self) -> int:
        with self.lock:
            return self.state.connections

    def reset(self) -> None:
        """Forget every request, delivery and rule (between benchmark runs)."""
        with self.lock:
            self.state = _State()

    def attempts(self, key: str) -> int:
        with self.lock:
            return self.state.attempts[key]

    def delivered_to(self, to: str) -> list[Accepted]:
        return [item for item in self.delivered() if item.request.to == to]

    # --- the server side -------------------------------------------------------------------------

    def _next_rule(self, request: Request) -> Rule:
        with self.lock:
            self.state.requests.append(request)
            if request.idempotency_key:
                self.state.attempts[request.idempotency_key] += 1
            for rule in self.state.rules:
                if rule.matches(request):
                    rule.times -= 1
                    return Rule(**{**rule.__dict__, "times": 1})
        return Rule()

    def _accept(self, request: Request) -> str:
        twilio = request.path.endswith("/Messages.json")
        with self.lock:
            key = request.idempotency_key
            if key and key in self.state.accepted:
                return self.state.accepted[key].provider_id
            provider_id = f"{'SM' if twilio else 'gw-'}{next(self.ids):06d}"
            accepted = Accepted(provider_id=provider_id, request=request)
            if key:
                self.state.accepted[key] = accepted
            self.state.delivered.append(accepted)
            return provider_id

    def _authorised(self, request: Request) -> bool:
        given = request.headers.get("Authorization", "")
        if self.token and given != f"Bearer {self.token}":
            return False
        if self.basic_auth:
            expected = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            return given == f"Basic {expected}"
        return True


def _handler_for(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real gateway
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK hold the body back ~40 ms per request.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with gateway.lock:
                gateway.state.connections += 1

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet test output
            return None

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(method="POST", path=self.path, headers=dict(self.headers.items()), body=body,
                              data=_parse(self.headers.get("Content-Type", ""), body))
            rule = gateway._next_rule(request)
            if rule.delay and gateway.closing.wait(rule.delay):
                return
            if not gateway._authorised(request):
                self._answer(401, {"message": "Authentication failed"})
            elif rule.status >= 300:
                headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else {}
                message = rule.message or HTTPStatus(rule.status).phrase
                self._answer(rule.status, {"message": message, "code": rule.status}, headers, raw=rule.body)
            else:
                provider_id = gateway._accept(request)
                if rule.drop:
                    self.close_connection = True
                    return
                if rule.body is not None:
                    self._answer(rule.status, {}, raw=rule.body)
                elif urlsplit(self.path).path.endswith("/Messages.json"):
                    self._answer(201, {"sid": provider_id, "status": "queued", "to": request.to})
                else:
                    self._answer(200, {"id": provider_id, "status": "queued"})
            if rule.hang_up:
                self.close_connection = True

        def _answer(self, status: int, payload: dict, headers: dict | None = None, raw: bytes | None = None) -> None:
            data = json.dumps(payload).encode() if raw is None else raw
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if raw is None else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a stall longer than its timeout)

    return Handler


def _parse(content_type: str, body: bytes) -> dict:
    if "json" in content_type:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    if "x-www-form-urlencoded" in content_type:
        return {name: values[0] for name, values in parse_qs(body.decode(), keep_blank_values=True).items()}
    return {}


# Set-ups for fixtures. pytest refuses `pytest_plugins` in a non-root conftest, so each test
# module defines its fixture in three lines:
#
#     @pytest.fixture
#     def sms_gateway(settings):
#         with json_gateway(settings) as gateway:
#             yield gateway

GATEWAY_TOKEN = "gw-token"
TWILIO_SID, TWILIO_TOKEN, TWILIO_FROM = "AC0123456789abcdef", "tw-secret", "+14155550100"


@contextmanager
def json_gateway(settings) -> Iterator[Gateway]:
    """The loopback JSON gateway, with settings.SMS_BACKEND sending to it (timeout 0.5 s)."""
    gateway = Gateway(token=GATEWAY_TOKEN).start()
    settings.SMS_BACKEND = "campaigns.channels.sms.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = f"{gateway.url}/api/v1/send"
    settings.SMS_GATEWAY_TOKEN = GATEWAY_TOKEN
    settings.DISPATCH_SEND_TIMEOUT_SECONDS = 0.5
    try:
        yield gateway
    finally:
        gateway.stop()


@contextmanager
def twilio_api(settings) -> Iterator[Gateway]:
    """The loopback gateway playing Twilio's Messages API, with settings.SMS_BACKEND sending to it."""
    gateway = Gateway(basic_auth=(TWILIO_SID, TWILIO_TOKEN)).start()
    settings.SMS_BACKEND = "campaigns.channels.sms.TwilioBackend"
    settings.TWILIO_API_BASE = gateway.url
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = TWILIO_SID, TWILIO_TOKEN
    settings.TWILIO_FROM_NUMBER = TWILIO_FROM
    settings.DISPATCH_SEND_TIMEOUT_SECONDS = 0.5
    try:
        yield gateway
    finally:
        gateway.stop()
