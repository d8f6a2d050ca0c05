"""Who is on the other end of a WebSocket: a browser with its session, or an API client with the
handshake's `Authorization: Token <key>` header, checked by the same knox authentication as the
REST API (hashed, expiring tokens).

Only session handshakes need the Origin check: it stops another site's page from riding on the
browser's cookie. A token is never sent by a browser on its own, and API clients usually send no
Origin at all, so token handshakes skip it. A handshake that names a token and gets it wrong is
anonymous, whatever cookie it also carries, and is refused like a bad REST call."""

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


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


def websocket_auth(inner):
    """Wrap a WebSocket application: token handshakes get the token's user, the others the
    session's user behind the allowed-hosts Origin check."""
    by_session = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def app(scope, receive, send):
        header = dict(scope.get("headers", ())).get(b"authorization")
        if header is None:
            return await by_session(scope, receive, send)
        return await inner({**scope, "user": await _token_user(header)}, receive, send)

    return app
