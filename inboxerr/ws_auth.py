"""Who is on the other end of a WebSocket: a browser with its session, or an API client with the
handshake's `Authorization: Token <key>` header, checked by the same knox authentication as the
REST API (hashed, expiring tokens).

Only session handshakes need the Origin check: it stops another site's page from riding on the
browser's cookie. A token is never sent by a browser on its own, and API clients usually send no
Origin at all, so token handshakes skip it. A handshake that names a token and gets it wrong is
anonymous, whatever cookie it also carries, and is refused like a bad REST call: it counts against
its address's API_THROTTLE_ANON allowance as a 401 does, and once the address is over it, its token
handshakes are refused unread (close code 4429, what a 429 would have said)."""

from types import SimpleNamespace

from asgiref.sync import sync_to_async

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from inboxerr.progress import CLOSE_THROTTLED
from inboxerr.throttling import AnonRateThrottle


@database_sync_to_async
def _user_for_token(key: bytes):
    try:
        user, _ = TokenAuthentication().authenticate_credentials(key)
    except AuthenticationFailed:
        return AnonymousUser()
    return user


async def _token_user(header: bytes):
    prefix, _, key = header.partition(b" ")
    key = key.strip()
    if prefix != settings.REST_KNOX["AUTH_HEADER_PREFIX"].encode() or not key:
        return AnonymousUser()
    return await _user_for_token(key)


def _handshake_request(scope) -> SimpleNamespace:
    """What inboxerr.throttling.client_ip reads of a request (REMOTE_ADDR, X-Forwarded-For), from
    the handshake's scope."""
    headers = dict(scope.get("headers", ()))
    meta = {"REMOTE_ADDR": (scope.get("client") or (None,))[0]}
    if b"x-forwarded-for" in headers:
        meta["HTTP_X_FORWARDED_FOR"] = headers[b"x-forwarded-for"].decode("latin-1")
    return SimpleNamespace(META=meta)


@sync_to_async
def _over_anon_allowance(request) -> bool:
    return AnonRateThrottle().wait_if_over(request) is not None


@sync_to_async
def _count_failure(request) -> bool:
    """True when this failure filled the address's allowance."""
    return AnonRateThrottle().count_failure(request) is not None


async def _refuse(receive, send, code: int) -> None:
    """Refuse the handshake with `code` (the WebSocket close that a consumer's close() sends)."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": code})


def websocket_auth(inner):
    """Wrap a WebSocket application: token handshakes get the token's user, the others the
    session's user behind the allowed-hosts Origin check."""
    by_session = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def app(scope, receive, send):
        header = dict(scope.get("headers", ())).get(b"authorization")
        if header is None:
            return await by_session(scope, receive, send)
        request = _handshake_request(scope)
        if await _over_anon_allowance(request):
            return await _refuse(receive, send, CLOSE_THROTTLED)
        user = await _token_user(header)
        if not user.is_authenticated and await _count_failure(request):
            return await _refuse(receive, send, CLOSE_THROTTLED)
        return await inner({**scope, "user": user}, receive, send)

    return app
