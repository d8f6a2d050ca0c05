"""POST /api/v1/sms/inbound: replies from handsets, relayed by the SMS gateway.

Authentication is the signature, not a session or a token: the caller (the gateway, or a relay in
front of it) sends the current time as `X-Inboxerr-Timestamp: <unix seconds>` and
`X-Inboxerr-Signature: sha256=<hex>`, the HMAC-SHA256 under the shared secret SMS_INBOUND_SECRET
of the timestamp, a dot and the raw request body (`1767225600.{"from": ...}`), as Stripe and
Slack sign theirs. No signature or timestamp: 401; a wrong signature: 403; a timestamp more than
SMS_INBOUND_TOLERANCE_SECONDS (default 300) before or after the server's clock: 403 ("too old",
"too far in the future"); a signature already accepted: 403 ("Request already processed"), so a
captured request cannot be played again (a sender retrying after a lost answer signs again with a
new timestamp; a second STOP or START changes nothing more). No secret configured: 503, the route
is off.

Body: JSON `{"from": "+14155552671", "body": "STOP"}`, or Twilio-style form fields `From` and
`Body` (application/x-www-form-urlencoded), signed the same way.
"""

import hashlib
import hmac
import json
import re
from datetime import datetime, timezone as dt_timezone
from urllib.parse import parse_qs

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.sms_inbound import sms_inbound_receive
from inboxerr.actors import Actor
from inboxerr.errors import InvalidInput
from inboxerr.openapi import error_response
from inboxerr.parsers import StorableJSONParser

SIGNATURE_HEADER = "X-Inboxerr-Signature"
TIMESTAMP_HEADER = "X-Inboxerr-Timestamp"
UNIX_SECONDS = re.compile(r"\d{1,12}")


def request_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Inboxerr-Signature value for `body` sent with X-Inboxerr-Timestamp `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """What a sender (a relay in front of the gateway, the tests) adds to its POST of `body`."""
    timestamp = int(timezone.now().timestamp()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: request_signature(secret, timestamp, body)}


class SmsInboundView(APIView):
    authentication_classes: list = []  # the HMAC signature is the authentication
    # Opt-outs are a legal duty and the gateway relays every handset's reply from a few addresses: a
    # STOP must never wait for a per-address allowance. Checking a signature costs next to nothing.
    throttle_classes: list = []
    permission_classes = [AllowAny]
    # The view reads the signed bytes itself (_fields); these only tell the schema what it takes.
    parser_classes = [StorableJSONParser, FormParser]

    @extend_schema(
        tags=["sms"],
        summary="Inbound SMS (STOP / START), signed with HMAC-SHA256 over a timestamp and the body",
        description=__doc__,
        parameters=[
            OpenApiParameter(TIMESTAMP_HEADER, str, OpenApiParameter.HEADER, required=True,
                             description="The time of signing, unix seconds; refused when more than "
                                         "SMS_INBOUND_TOLERANCE_SECONDS away from the server's clock"),
            OpenApiParameter(SIGNATURE_HEADER, str, OpenApiParameter.HEADER, required=True,
                             description='sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with SMS_INBOUND_SECRET>; '
                                         "each signature is accepted once"),
        ],
        request=inline_serializer("SmsInbound", {"from": serializers.CharField(), "body": serializers.CharField()}),
        responses={503: error_response("Inbound SMS is off: SMS_INBOUND_SECRET is not set"),
                   401: error_response(f"No {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header"),
                   403: error_response(f"The {SIGNATURE_HEADER} signature does not match, the timestamp is outside "
                                       "SMS_INBOUND_TOLERANCE_SECONDS, or the request was already processed"),
                   200: inline_serializer("SmsInboundResult", {
            "action": serializers.ChoiceField(choices=["stop", "start", "none"]),
            "phone": serializers.CharField(),
            "owners": serializers.IntegerField(),
            "suppressions_created": serializers.IntegerField(),
            "suppressions_removed": serializers.IntegerField(),
            "subscribers_changed": serializers.IntegerField(),
        })},
    )
    def post(self, request: Request) -> Response:
        verified = _verified(request)
        if isinstance(verified, Response):
            return verified
        signature, signed_at = verified
        sender, text = _fields(request.content_type or "", request.body)
        actor = Actor(user=None, source="sms_inbound", ip=request.META.get("REMOTE_ADDR"))
        result = sms_inbound_receive(actor=actor, sender=sender, body=text, signature=signature, signed_at=signed_at)
        return Response(result.as_dict())


def _verified(request: Request) -> tuple[str, datetime] | Response:
    """The request's signature (hex, as computed here) and signing time, or the refusal."""
    secret = settings.SMS_INBOUND_SECRET
    if not secret:
        return Response({"detail": "Inbound SMS is off: SMS_INBOUND_SECRET is not set"},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE)
    challenge = {"WWW-Authenticate": f'HMAC-SHA256 headers="{TIMESTAMP_HEADER} {SIGNATURE_HEADER}"'}
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not given:
        return Response({"detail": f'Missing {SIGNATURE_HEADER} header (sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">)'},
                        status=status.HTTP_401_UNAUTHORIZED, headers=challenge)
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    if not timestamp:
        return Response({"detail": f"Missing {TIMESTAMP_HEADER} header (unix seconds, signed with the body)"},
                        status=status.HTTP_401_UNAUTHORIZED, headers=challenge)
    if not UNIX_SECONDS.fullmatch(timestamp):
        return Response({"detail": f"{TIMESTAMP_HEADER} must be unix seconds (digits only), got {timestamp[:40]!r}"},
                        status=status.HTTP_401_UNAUTHORIZED, headers=challenge)
    expected = request_signature(secret, timestamp, request.body)
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        return Response({"detail": f"Invalid {SIGNATURE_HEADER} signature"}, status=status.HTTP_403_FORBIDDEN)
    # Checked after the signature, so only the secret's holder learns how the clock compares.
    tolerance = settings.SMS_INBOUND_TOLERANCE_SECONDS
    age = int(timezone.now().timestamp()) - int(timestamp)
    if abs(age) > tolerance:
        problem, side = ("too old", "before") if age > 0 else ("too far in the future", "after")
        return Response({"detail": f"Timestamp {problem}: {TIMESTAMP_HEADER} is {abs(age)} s {side} the server's "
                                   f"clock, more than SMS_INBOUND_TOLERANCE_SECONDS ({tolerance})"},
                        status=status.HTTP_403_FORBIDDEN)
    # The hex computed here, not the header as sent: an upper-cased copy is the same request.
    return expected.removeprefix("sha256="), datetime.fromtimestamp(int(timestamp), tz=dt_timezone.utc)


def _fields(content_type: str, body: bytes) -> tuple[str, str]:
    """`from` and `body` out of the signed bytes themselves (JSON, or Twilio's form fields)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise InvalidInput("body: is not UTF-8") from None
        data = {name: values[0] for name, values in form.items()}
    else:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise InvalidInput("body: is not valid JSON (send {\"from\": ..., \"body\": ...})") from None
        if not isinstance(data, dict):
            raise InvalidInput("body: must be a JSON object with 'from' and 'body'")
    sender = data.get("from", data.get("From"))
    text = data.get("body", data.get("Body", ""))
    if sender is not None and not isinstance(sender, str):
        raise InvalidInput("from: must be text (a phone number)", field="from")
    if not sender or not sender.strip():
        raise InvalidInput("from: is required", field="from")
    if not isinstance(text, str):
        raise InvalidInput("body: must be text", field="body")
    return sender, text
