"""A real SMTP server on loopback (aiosmtpd) with Django's mail settings pointed at it."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_smtp(handler, settings, **server_options) -> Iterator[int]:
    """Run `handler` (an aiosmtpd handler) on a free loopback port for the duration; yields the
    port. `server_options` go to aiosmtpd's SMTP server (enable_SMTPUTF8=True, say)."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **server_options)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        yield port
    finally:
        controller.stop()
