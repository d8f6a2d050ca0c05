import uuid

from django.conf import settings
from django.db import models

from subscribers.models import Channel


class MessageTemplate(models.Model):
    """Subject and bodies with merge fields ({{ name }}, {{ order_no|default:"-" }})."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="message_templates")
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    subject = models.CharField(max_length=500, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    # The merge fields the template uses, kept by the service that saves it.
    variables = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="template_name_unique_per_owner")]

    def __str__(self) -> str:
        return self.name


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    STARTING = "starting", "Starting"  # the fan-out that creates its messages is running
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class CampaignKind(models.TextChoices):
    CAMPAIGN = "campaign", "Campaign"
    BULK_EMAIL = "bulk_email", "Bulk email job"  # seed 004's reminder jobs


class Campaign(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="campaigns")
    kind = models.CharField(max_length=16, choices=CampaignKind.choices, default=CampaignKind.CAMPAIGN)
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    template = models.ForeignKey(MessageTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns")
    message_content = models.TextField(blank=True)
    subject = models.CharField(max_length=500, blank=True)
    # Audience: lists and/or one import job; explicit recipients (from-csv, bulk email) are
    # written as messages when the campaign is created.
    lists = models.ManyToManyField("subscribers.SubscriberList", blank=True, related_name="campaigns")
    import_job = models.ForeignKey("imports.ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    status_reason = models.CharField(max_length=500, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Message counters, kept set-based by fan-out and the dispatcher (O(1) progress at any size).
    total_count = models.BigIntegerField(default=0)
    sent_count = models.BigIntegerField(default=0)
    failed_count = models.BigIntegerField(default=0)
    skipped_count = models.BigIntegerField(default=0)
    unknown_count = models.BigIntegerField(default=0)
    cancelled_count = models.BigIntegerField(default=0)
    # Seed 004 job fields (job_type, personal_message, term, deadline) and similar extras.
    job_data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # Declared here (not in a data migration) so Django recreates it after every flush.
        permissions = [("send_bulk_email", "Can send bulk email jobs")]
        indexes = [
            models.Index(fields=["owner", "kind", "-created_at"], name="campaign_owner_kind"),
            models.Index(fields=["status"], name="campaign_status"),
        ]

    def __str__(self) -> str:
        return self.name

    def event_payload(self) -> dict:
        """What every campaign webhook event says about the campaign."""
        return {"campaign_id": str(self.pk), "name": self.name, "kind": self.kind, "channel": self.channel}

    @property
    def pending_count(self) -> int:
        done = self.sent_count + self.failed_count + self.skipped_count + self.unknown_count + self.cancelled_count
        return max(0, self.total_count - done)


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"  # leased by a worker until leased_until
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"  # suppressed, unsubscribed, bounced or invalid at fan-out
    UNKNOWN = "unknown", "Outcome unknown"  # the provider may have taken it: never resent blindly
    CANCELLED = "cancelled", "Cancelled"


class Message(models.Model):
    """One message to one recipient. The hottest table: lean, with its foreign keys unchecked by
    the database (fan-out of a million rows pays a row-level check per key otherwise; the
    campaign and subscriber rows are only ever removed by services that remove these too)."""

    uid = models.UUIDField(default=uuid.uuid4, editable=False, help_text="Idempotency key sent with the message.")
    campaign = models.ForeignKey(
        Campaign, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="messages"
    )  # indexed by message_campaign_status
    subscriber = models.ForeignKey(
        "subscribers.Subscriber",
        null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+",
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=254)
    variables = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    skip_reason = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    # Set just before the send is handed to the backend: a message whose worker died with this
    # set may have reached the provider, so it is not resent blindly.
    send_started_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    sequence = models.BigIntegerField(default=0)
    segments = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The claim: the oldest queued messages first (see DESIGN.md, "Claims").
            models.Index(fields=["id"], name="message_queued", condition=models.Q(status="queued")),
            # Expired leases, found by the sweeper.
            models.Index(fields=["leased_until"], name="message_leased", condition=models.Q(status="sending")),
            models.Index(fields=["campaign", "status"], name="message_campaign_status"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.recipient} ({self.status})"


class RateLimit(models.Model):
    """A token bucket shared by every worker on every machine: `rate` sends per second, up to
    `burst` at once. Edited in the admin; workers read it on every refill, so a change takes
    effect at once."""

    name = models.CharField(max_length=64, unique=True, help_text="The channel backend it limits: email or sms.")
    rate = models.FloatField(help_text="Sends per second; 0 stops sending on this channel.")
    burst = models.PositiveIntegerField(default=50)
    tokens = models.FloatField(default=0, editable=False)
    refilled_at = models.DateTimeField(auto_now_add=True, editable=False)
    enabled = models.BooleanField(default=True, help_text="Off: no limit at all.")

    def __str__(self) -> str:
        return f"{self.name}: {self.rate}/s (burst {self.burst})"


class DispatchSlot(models.Model):
    """At most DISPATCH_WORKERS dispatcher runs are queued or running at once: a run holds a slot
    until it ends, or until `busy_until` passes if its worker died."""

    number = models.PositiveSmallIntegerField(primary_key=True)
    busy_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"slot {self.number}"
