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
    # The audience's status filter: active subscribers always; inactive ones too when asked (a
    # re-engagement send). Unsubscribed, bounced and suppressed addresses never.
    include_inactive = models.BooleanField(
        default=False, help_text="Also send to the lists' inactive subscribers (never to unsubscribed, bounced or "
                                 "suppressed ones).")
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    status_reason = models.CharField(max_length=500, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written and committed before a fan-out run begins its long transaction, so a run whose worker
    # dies leaves its count behind: the minute tick requeues the fan-out, or parks the campaign.
    # Database defaults too, for the set-based INSERTs that write campaigns without naming these.
    fan_out_attempts = models.PositiveSmallIntegerField(
        default=0, db_default=0,
        help_text="Fan-out runs that began; once CAMPAIGN_MAX_FAN_OUT_ATTEMPTS began and none finished, the campaign is failed.")
    fan_out_claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the fan-out was last queued or taken up by a worker.")
    fan_out_error = models.CharField(
        max_length=300, blank=True, default="", db_default="",
        help_text="What the last fan-out run raised, if it raised; cleared by the next run.")
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


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # stored, waiting for the publisher
    PROCESSING = "processing", "Processing"  # the publisher is sending its items
    COMMITTED = "committed", "Committed"  # every item sent
    FAILED = "failed", "Failed"  # every item tried, at least one failed for good


# Batches still to send, and the order a stream sends them in: the one already processing first
# ('processing' sorts after 'pending', hence descending), then by batch_sequence.
OPEN_BATCH_STATUSES = (BatchStatus.PENDING, BatchStatus.PROCESSING)
BATCH_SENDING_ORDER = (models.F("status").desc(), "sequence")


class MessageBatch(models.Model):
    """A batch from the batch API (seed 003): its items are messages sent strictly in order, the
    owner's batches one after another by `sequence`; a batch is committed once all are sent."""

    batch_id = models.CharField(max_length=16, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="message_batches")
    sequence = models.BigIntegerField(editable=False, help_text="batch_sequence: the order in the owner's stream.")
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING)
    status_reason = models.CharField(max_length=500, blank=True)
    total_items = models.PositiveIntegerField(default=0)
    vendor_counts = models.JSONField(default=dict, blank=True)
    # Kept by the publisher as it goes (exact recount when the batch finishes).
    sent_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    processing_time_ms = models.FloatField(default=0, help_text="Time the ingest took.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    committed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["owner_id", "sequence"]
        verbose_name_plural = "message batches"
        constraints = [models.UniqueConstraint(fields=["owner", "sequence"], name="batch_sequence_unique_per_owner")]
        indexes = [models.Index(fields=["owner", "status", "sequence"], name="batch_owner_status_sequence")]
        permissions = [("control_outbox", "Can start and stop the outbox publisher")]

    def __str__(self) -> str:
        return f"batch {self.batch_id} (#{self.sequence})"

    @property
    def unsent_count(self) -> int:
        return max(0, self.total_items - self.sent_count - self.failed_count - self.skipped_count)

    @property
    def progress(self) -> float:
        """Share of the items with an outcome (sent, failed for good, or skipped), in percent."""
        if not self.total_items:
            return 100.0
        return round(100.0 * (self.total_items - self.unsent_count) / self.total_items, 1)

    def event_payload(self) -> dict:
        return {
            "batch_id": self.batch_id, "batch_sequence": self.sequence, "status": self.status,
            "total_items": self.total_items, "sent": self.sent_count, "failed": self.failed_count,
            "skipped": self.skipped_count, "vendor_counts": self.vendor_counts,
        }


class BatchStream(models.Model):
    """One owner's stream of batches: hands out batch sequence numbers (its row lock orders
    concurrent ingests) and is leased by the one publisher sending it."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+")
    last_sequence = models.BigIntegerField(default=0)
    leased_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)

    def __str__(self) -> str:
        return f"batch stream of user {self.owner_id}"


class OutboxSwitch(models.Model):
    """The publisher's persisted on/off switch (one row): every worker reads it before each step."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    enabled = models.BooleanField(default=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "batch publisher"

    def __str__(self) -> str:
        return "outbox publisher: " + ("running" if self.enabled else "stopped")


class Message(models.Model):
    """One message to one recipient. The hottest table: lean, with its foreign keys unchecked by
    the database (fan-out of a million rows pays a row-level check per key otherwise; the
    campaign and subscriber rows are only ever removed by services that remove these too)."""

    uid = models.UUIDField(default=uuid.uuid4, editable=False, help_text="Idempotency key sent with the message.")
    # A message belongs to a campaign or to a batch of the batch API, never both.
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="messages",
    )  # indexed by message_campaign_status
    batch = models.ForeignKey(
        "MessageBatch", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="items",
    )  # indexed by message_batch_sequence
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
    sequence = models.BigIntegerField(default=0, help_text="A batch item's item_sequence.")
    # What a batch item brings with it (a campaign's messages take these from the campaign). NULL,
    # not '', for campaign messages: the columns then cost nothing on the hottest table.
    request_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    vendor_name = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )
    subject = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    content = models.TextField(null=True, blank=True)  # noqa: DJ001
    segments = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The claim: the oldest queued campaign messages first (a partial index on id keeps it fast); batch
            # items waiting in their stream stay out of it (a 100k batch slowed a claim 200-fold).
            models.Index(fields=["id"], name="message_queued",
                         condition=models.Q(status="queued", campaign__isnull=False)),
            # Expired leases, found by the sweeper.
            models.Index(fields=["leased_until"], name="message_leased", condition=models.Q(status="sending")),
            models.Index(fields=["campaign", "status"], name="message_campaign_status"),
            # A batch's items in item order (the ordered publisher, the items API).
            models.Index(fields=["batch", "sequence"], name="message_batch_sequence",
                         condition=models.Q(batch__isnull=False)),
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


class SmsInboundReceipt(models.Model):
    """One signed inbound SMS request already acted on, kept while its timestamp is still
    accepted (SMS_INBOUND_TOLERANCE_SECONDS) so the same request cannot be played twice.

    A table rather than the cache: the embedded default has no cache shared between processes,
    and the unique key makes two copies racing through two workers collide in the database."""

    signature = models.CharField(max_length=64, primary_key=True, help_text="The request's HMAC-SHA256, hex.")
    signed_at = models.DateTimeField(db_index=True, help_text="The request's X-Inboxerr-Timestamp.")
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.signature[:12]}… signed {self.signed_at:%Y-%m-%d %H:%M:%S}"
