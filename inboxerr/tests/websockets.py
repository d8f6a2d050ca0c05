"""A WebSocket handshake through the whole ASGI application (routing, origin and auth middleware),
as a browser or a script makes it."""

from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator


async def _handshake(path: str, headers: list[tuple[bytes, bytes]], client: str) -> tuple[bool, object, dict | None]:
    from inboxerr.asgi import application  # the ASGI app sets Django up: import it late

    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["client"] = [client, 50000]
    connected, code = await communicator.connect(timeout=10)
    first = await communicator.receive_json_from(timeout=10) if connected else None
    await communicator.disconnect()
    return connected, code, first


def handshake(path: str, headers: list[tuple[bytes, bytes]], client: str = "127.0.0.1") -> tuple[bool, object, dict | None]:
    """(connected, close code, first message or None), from the address `client`."""
    return async_to_sync(_handshake)(path, headers, client)
