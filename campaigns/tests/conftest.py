import threading

import pytest

from campaigns import ratelimit
from campaigns.channels import sms
from campaigns.tests.gateway import json_gateway
from campaigns.tests.smtp import serve_smtp


class Inbox:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        with self.lock:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture(autouse=True)
def fresh_rate_limit_config():
    # Workers cache a bucket's settings for two seconds; each test starts from the database.
    ratelimit.clear_config_cache()
    yield
    ratelimit.clear_config_cache()


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    with serve_smtp(inbox, settings) as port:
        inbox.port = port
        yield inbox


@pytest.fixture
def sms_outbox(settings):
    settings.SMS_BACKEND = "campaigns.channels.sms.LocmemBackend"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


@pytest.fixture
def sms_gateway(settings):
    """A real loopback JSON SMS gateway, with the HTTP gateway backend pointed at it."""
    with json_gateway(settings) as gateway:
        yield gateway

