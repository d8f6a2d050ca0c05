"""API throttles and the one notion of "the client's address" they share with the login lockout.

DRF's throttles keep a sliding log of request times per key in the default cache: per user (token
or session) at API_THROTTLE_USER, per client address for calls without valid credentials at
API_THROTTLE_ANON. Two things DRF does not do on its own:

- its rates are read once, when the module loads; these classes read the settings at each
  request, so a deployment (or a test) that changes them is obeyed;
- a failed authentication never reaches DRF's throttles (authentication, then permissions, then
  throttles: a 401 stops before the last). Here every 401 counts against the caller's address,
  and an address over its limit is refused before its token is even looked at.
"""

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions, throttling
from rest_framework.request import Request


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or with NUM_PROXIES proxies in front, the address the
    outermost of them wrote into X-Forwarded-For (entries further left are the client's to forge).
    The login lockout (AXES_CLIENT_IP_CALLABLE) and the API throttles both use it."""
    remote = request.META.get("REMOTE_ADDR")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    proxies = settings.NUM_PROXIES
    if not proxies or not forwarded:
        return remote
    addresses = [part.strip() for part in forwarded.split(",")]
    return addresses[-min(proxies, len(addresses))] or remote


class _SettingsRate:
    """Rate from a setting read at each request rather than once at import."""

    rate_setting = ""

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)

    def get_ident(self, request) -> str | None:
        return client_ip(request)


class UserRateThrottle(_SettingsRate, throttling.UserRateThrottle):
    rate_setting = "API_THROTTLE_USER"


class AnonRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    rate_setting = "API_THROTTLE_ANON"

    def _history_key(self, request) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def wait_if_over(self, request) -> float | None:
        """Seconds until the address may call again when its log is full; None when it may now.
        Reads the log without adding to it."""
        history = self.cache.get(self._history_key(request), [])
        now = self.timer()
        history = [moment for moment in history if moment > now - self.duration]
        if len(history) < self.num_requests:
            return None
        self.history, self.now = history, now
        return self.wait()

    def count_failure(self, request) -> float | None:
        """Add a failed authentication to the address's log; the wait when that filled it."""
        self.key = self._history_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.wait()
        self.throttle_success()
        return None


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token authentication, closed to an address that has spent its unauthenticated
    allowance: its next guess is refused unread (429), right or wrong."""

    def authenticate(self, request: Request):
        if request.META.get("HTTP_AUTHORIZATION"):
            wait = AnonRateThrottle().wait_if_over(request)
            if wait is not None:
                raise exceptions.Throttled(wait)
        return super().authenticate(request)


class TokenScheme(KnoxTokenScheme):
    """The same `Authorization: Token <token>` scheme in the OpenAPI schema as knox's own."""

    target_class = "inboxerr.throttling.TokenAuthentication"


def throttle_failed_authentication(exc: Exception, request: Request | None) -> Exception:
    """A 401 (no credentials, or wrong ones) counts against the caller's address; once the address
    is over API_THROTTLE_ANON the answer is a 429 with Retry-After instead."""
    if request is None or not isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return exc
    wait = AnonRateThrottle().count_failure(request)
    return exc if wait is None else exceptions.Throttled(wait)


TOO_MANY_REQUESTS = {
    "description": "Too many requests: over API_THROTTLE_USER for this user, or over API_THROTTLE_ANON for this "
                   "address (failed authentications included). `detail` says when to come back.",
    "headers": {"Retry-After": {"description": "Seconds to wait before the next call", "schema": {"type": "integer"}}},
}


def document_throttling(result: dict, generator, request, public) -> dict:
    """drf-spectacular hook: every throttled operation lists its 429 answer."""
    # The schema names a router's {pk} {id} (SCHEMA_COERCE_PATH_PK); the endpoints still say {pk}.
    throttled = {(path.replace("{pk}", "{id}"), method.lower()) for path, _, method, callback in generator.endpoints
                 if getattr(getattr(callback, "cls", None), "throttle_classes", None)}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if (path, method) in throttled:
                operation.setdefault("responses", {}).setdefault("429", TOO_MANY_REQUESTS)
    return result
