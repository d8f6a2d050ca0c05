"""SMS backends: console and locmem for development and tests (the HTTP gateway backends come
with the SMS work)."""

import sys

from campaigns.channels.base import ChannelBackend, OutgoingMessage

outbox: list[OutgoingMessage] = []  # locmem: what tests read, like django.core.mail.outbox


class ConsoleBackend(ChannelBackend):
    def send(self, message: OutgoingMessage) -> str:
        sys.stdout.write(f"SMS to {message.recipient} [{message.uid}]: {message.body_text}\n")
        sys.stdout.flush()
        return ""


class LocmemBackend(ChannelBackend):
    idempotent = True

    def send(self, message: OutgoingMessage) -> str:
        outbox.append(message)
        return f"locmem-{len(outbox)}"
