from rest_framework import serializers

from campaigns.models import Campaign, Message, MessageStatus, MessageTemplate
from campaigns.selectors import campaign_figures
from inboxerr.openapi import NOT_BLANK, given, states_rule
from subscribers.models import Channel


class TemplateSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.EMAIL)

    class Meta:
        model = MessageTemplate
        fields = ["id", "owner", "name", "channel", "subject", "body_text", "body_html", "is_active", "variables",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "variables", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}  # uniqueness is the service's (409, not 400)


# Only a new template must have a body: an update merges with the stored one.
@states_rule("A template needs a text body or an HTML body (or both), not blank.",
             anyOf=[given("body_text", NOT_BLANK, "with a text body"), given("body_html", NOT_BLANK, "with an HTML body")])
class TemplateCreateSerializer(TemplateSerializer):
    pass


# The service reads a template_id of 0 and a blank message_content as not given; ids start at 1.
@states_rule("Exactly one of template_id (a template of yours) and message_content (not blank).",
             oneOf=[given("template_id", {"type": "integer"}, "from a template"),
                    given("message_content", NOT_BLANK, "with its own content")])
class CampaignCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    channel = serializers.ChoiceField(choices=Channel.choices)
    template_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    message_content = serializers.CharField(required=False, allow_blank=True, default="", max_length=100_000)
    subject = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    list_names = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list, max_length=100)
    import_id = serializers.UUIDField(required=False, allow_null=True)
    scheduled_at = serializers.DateTimeField(required=False, allow_null=True)
    include_inactive = serializers.BooleanField(
        required=False, default=False,
        help_text="Also send to the lists' inactive subscribers (never to unsubscribed, bounced or suppressed ones).")


class CampaignFromCsvSerializer(serializers.Serializer):
    # A multipart form has no null: a field is given or left out.
    file = serializers.FileField(help_text="CSV with an email (or phone, for SMS) column; other columns become variables.")
    name = serializers.CharField(max_length=200)
    channel = serializers.ChoiceField(choices=Channel.choices)
    template_id = serializers.IntegerField(required=False)
    message_content = serializers.CharField(required=False, allow_blank=True, default="", max_length=100_000)
    subject = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    scheduled_at = serializers.DateTimeField(required=False)


class CampaignSerializer(serializers.ModelSerializer):
    # Null when the campaign has its own content, or an audience of lists rather than an import.
    template_id = serializers.IntegerField(read_only=True, allow_null=True)
    import_id = serializers.UUIDField(source="import_job_id", read_only=True, allow_null=True)
    list_names = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    send_rate = serializers.SerializerMethodField(help_text="Messages finished per second since the start.")
    eta_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = ["id", "name", "kind", "channel", "status", "status_reason", "template_id", "message_content", "subject",
                  "list_names", "import_id", "include_inactive", "scheduled_at", "started_at", "finished_at", "counts",
                  "fan_out_attempts", "progress",
                  "send_rate", "eta_seconds",
                  "created_at", "updated_at"]
        read_only_fields = fields

    def get_list_names(self, campaign: Campaign) -> list[str]:
        return sorted(lst.name for lst in campaign.lists.all())

    def get_counts(self, campaign: Campaign) -> dict:
        return {
            "total": campaign.total_count, "sent": campaign.sent_count, "failed": campaign.failed_count,
            "skipped": campaign.skipped_count, "unknown": campaign.unknown_count, "cancelled": campaign.cancelled_count,
            "pending": campaign.pending_count,
        }

    def get_send_rate(self, campaign: Campaign) -> float:
        return round(campaign_figures(campaign)["send_rate"], 1)

    def get_eta_seconds(self, campaign: Campaign) -> float | None:
        return campaign_figures(campaign)["eta_seconds"]

    def get_progress(self, campaign: Campaign) -> float:
        return campaign_figures(campaign)["progress"]


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "uid", "channel", "recipient", "status", "skip_reason", "attempts", "next_attempt_at",
                  "last_error", "provider_message_id", "segments", "sent_at", "created_at"]
        read_only_fields = fields


class TestSendSerializer(serializers.Serializer):
    recipient = serializers.CharField(max_length=254, help_text="Email address or phone number to send the test to.")


class TestSendResultSerializer(serializers.Serializer):
    sent = serializers.BooleanField()
    recipient = serializers.CharField()
    provider_message_id = serializers.CharField()
    subject = serializers.CharField()


class PreviewSerializer(serializers.Serializer):
    subscriber_id = serializers.IntegerField(allow_null=True)
    subject = serializers.CharField()
    body_text = serializers.CharField()
    body_html = serializers.CharField()


class PreviewParamsSerializer(serializers.Serializer):
    subscriber_id = serializers.IntegerField(required=False, min_value=1)


class MessageListParamsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False)
