"""POST /api/v1/sms/inbound: replies from handsets, relayed by the SMS gateway.

Authentication is the signature, not a session or a token: the caller (the gateway, or a relay in
front of it) signs the raw request body with HMAC-SHA256 under the shared secret
SMS_INBOUND_SECRET and sends `X-Inboxerr-Signature: sha256=<hex digest>`. No signature: 401; a
wrong one: 403; no secret configured: 503, the route is off.

Body: JSON `{"from": "+14155552671", "body": "STOP"}`, or Twilio-style form fields `From` and
`Body` (application/x-www-form-urlencoded), signed the same way.
"""

import hashlib
import hmac
import json
from urllib.parse import parse_qs

from django.conf import settings
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


def body_signature(secret: str, body: bytes) -> str:
    """The header value a caller sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SmsInboundView(APIView):
    authentication_classes: list = []  # the HMAC signature is the authentication
    permission_classes = [AllowAny]
    # The view reads the signed bytes itself (_fields); these only tell the schema what it takes.
    parser_classes = [StorableJSONParser, FormParser]

    @extend_schema(
        tags=["sms"],
        summary="Inbound SMS (STOP / START), signed with HMAC-SHA256",
        description=__doc__,
        parameters=[OpenApiParameter(SIGNATURE_HEADER, str, OpenApiParameter.HEADER, required=True,
                                     description="sha256=<hex HMAC-SHA256 of the raw body with SMS_INBOUND_SECRET>")],
        request=inline_serializer("SmsInbound", {"from": serializers.CharField(), "body": serializers.CharField()}),
        responses={503: error_response("Inbound SMS is off: SMS_INBOUND_SECRET is not set"),
                   401: error_response(f"No {SIGNATURE_HEADER} header"),
                   403: error_response(f"The {SIGNATURE_HEADER} signature does not match the body"),
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
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
        sender, text = _fields(request.content_type or "", request.body)
        actor = Actor(user=None, source="sms_inbound", ip=request.META.get("REMOTE_ADDR"))
        result = sms_inbound_receive(actor=actor, sender=sender, body=text)
        return Response(result.as_dict())


def _refusal(request: Request) -> Response | None:
    secret = settings.SMS_INBOUND_SECRET
    if not secret:
        return Response({"detail": "Inbound SMS is off: SMS_INBOUND_SECRET is not set"},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE)
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not given:
        return Response({"detail": f"Missing {SIGNATURE_HEADER} header (sha256=<hex HMAC-SHA256 of the body>)"},
                        status=status.HTTP_401_UNAUTHORIZED,
                        headers={"WWW-Authenticate": f'HMAC-SHA256 header="{SIGNATURE_HEADER}"'})
    if not hmac.compare_digest(given.strip().lower().encode(), body_signature(secret, request.body).encode()):
        return Response({"detail": f"Invalid {SIGNATURE_HEADER} signature"}, status=status.HTTP_403_FORBIDDEN)
    return None


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
