from django.core.validators import URLValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inboxerr.webhooks.events import WebhookEvent
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint

EVENTS_HELP = "Event names to receive; empty means every event."


class EndpointSerializer(serializers.ModelSerializer):
    # Text, not format `uri`: a stored URL may be an internationalised one (http://bücher.example/),
    # which Django's URL validation accepts and RFC 3986 does not.
    url = serializers.CharField(read_only=True)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices), help_text=EVENTS_HELP)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "is_active", "disabled_reason", "failing_since", "created_at"]
        read_only_fields = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="Signing secret (whsec_...). Shown only in this response.")

    class Meta(EndpointSerializer.Meta):
        fields = EndpointSerializer.Meta.fields + ["secret"]
        read_only_fields = fields


# What Django's URL validation takes, as far as a schema can say it: an absolute http(s) URL with a
# DNS name (labels of letters, digits and inner hyphens, a top-level domain of letters; at most
# three labels before it, which keeps the name under DNS's 253 characters), an optional port up
# to 65535, then a path without whitespace (Python's whitespace, which counts \x1c-\x1f and \x85,
# unlike a JSON Schema pattern's \s). Django also takes addresses, localhost and user:password@,
# not said here.
@extend_schema_field({"type": "string", "maxLength": 2000, "pattern": (
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,60}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,63}\.?"
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
    r"(?:[/?#][^\s\u001c-\u001f\u0085]*)?$")})
class WebhookUrlField(serializers.CharField):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # Django's validator inside a function: given as such, drf-spectacular would add `format:
        # uri` to the pattern above, and RFC 3986 allows much that this field refuses.
        self.validators.append(_http_url)


def _http_url(value: str) -> None:
    URLValidator(schemes=["http", "https"], message="Enter a valid URL.")(value)


class EndpointWriteSerializer(serializers.Serializer):
    url = WebhookUrlField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), required=False, default=list, help_text=EVENTS_HELP
    )
    is_active = serializers.BooleanField(required=False, default=True)


class EndpointPatchSerializer(serializers.Serializer):
    url = WebhookUrlField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices), required=False)
    is_active = serializers.BooleanField(required=False)


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint", "event", "webhook_id", "payload", "status", "attempts", "next_attempt_at",
            "response_code", "response_body_excerpt", "last_error", "created_at", "delivered_at",
        ]
        read_only_fields = fields


class DeletedSerializer(serializers.Serializer):
    deleted = serializers.IntegerField()
