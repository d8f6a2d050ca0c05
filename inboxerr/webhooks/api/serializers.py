from rest_framework import serializers

from inboxerr.webhooks.events import WebhookEvent
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint

EVENTS_HELP = "Event names to receive; empty means every event."


class EndpointSerializer(serializers.ModelSerializer):
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


class EndpointWriteSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), required=False, default=list, help_text=EVENTS_HELP
    )
    is_active = serializers.BooleanField(required=False, default=True)


class EndpointPatchSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False)
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
