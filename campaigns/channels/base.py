"""The contract every channel backend keeps, like Django's email backends: settings choose the
class, the dispatcher opens it once per batch, sends message by message, and records each
outcome. A backend never retries by itself: it says what happened and the dispatcher decides."""

from dataclasses import dataclass, field


class SendError(Exception):
    """A send that did not succeed.

    permanent: will never succeed (invalid address, a 4xx other than 429): fail at once.
    retry_after: seconds the provider asked us to wait (429 Retry-After, 503).
    unknown: the provider may have taken it (a timeout after the request went out): never
    resent blindly, recorded as `unknown` unless the backend is idempotent.
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None, unknown: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.unknown = unknown


@dataclass
class OutgoingMessage:
    uid: str  # the message's UUID: the idempotency key (Idempotency-Key / Message-ID)
    channel: str
    recipient: str
    body_text: str
    subject: str = ""
    body_html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    segments: int = 0  # SMS backends set it when they send: the segment count stored per message


class ChannelBackend:
    """Subclasses implement send(); open()/close() bracket a batch (one SMTP connection, one
    HTTP keep-alive session)."""

    # True when the provider deduplicates on the idempotency key, so a send whose outcome is
    # unknown may be repeated safely.
    idempotent = False

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, message: OutgoingMessage) -> str:
        """Send one message; return the provider's id for it (or "" if it gives none)."""
        raise NotImplementedError

    def __enter__(self) -> "ChannelBackend":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
