"""One-click unsubscribe (RFC 8058): a signed, per-recipient URL in every email."""

from django.conf import settings
from django.core import signing

SALT = "inboxerr.unsubscribe"


def unsubscribe_token(*, owner_id: int, channel: str, address: str) -> str:
    return signing.dumps({"o": owner_id, "c": channel, "a": address}, salt=SALT, compress=True)


def read_token(token: str) -> dict:
    """The (owner, channel, address) a token stands for; raises signing.BadSignature."""
    data = signing.loads(token, salt=SALT)
    return {"owner_id": int(data["o"]), "channel": str(data["c"]), "address": str(data["a"])}


def unsubscribe_url(*, owner_id: int, channel: str, address: str) -> str:
    return f"{settings.SITE_URL}/u/{unsubscribe_token(owner_id=owner_id, channel=channel, address=address)}"


def unsubscribe_headers(url: str) -> dict[str, str]:
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
