from django.conf import settings
from django.db import models


class KeyField(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"


class SubscriberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"


# Statuses that put a subscriber's addresses on the owner's suppression list.
SUPPRESSING_STATUSES = {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED}


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    MANUAL = "manual", "Manual"


class SubscriberList(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriber_lists")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    key_field = models.CharField(max_length=8, choices=KeyField.choices, default=KeyField.EMAIL)
    # Kept by the services that add and remove subscribers (in the same transaction), so list
    # counts stay O(lists) at any size; `list_recount` repairs it from the table if ever needed.
    subscriber_count = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="list_name_unique_per_owner")]

    def __str__(self) -> str:
        return self.name


class Subscriber(models.Model):
    list = models.ForeignKey(SubscriberList, on_delete=models.CASCADE, related_name="subscribers")
    # The normalised value of the list's key field (lower-cased email or E.164 phone): one
    # unique index serves both kinds of list and is the conflict target of every upsert.
    key = models.CharField(max_length=254, editable=False)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=20, blank=True)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=SubscriberStatus.choices, default=SubscriberStatus.ACTIVE)
    standard_fields = models.JSONField(default=dict, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    import_job = models.ForeignKey(
        "imports.ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="subscribers",
        db_constraint=False,  # lineage only: a job row may be cleared long after its subscribers
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["list", "key"], name="subscriber_key_unique_per_list")]
        indexes = [
            # list/{name} pages and the default search sort.
            models.Index(fields=["list", "-created_at", "-id"], name="sub_list_created"),
            models.Index(fields=["-created_at", "-id"], name="sub_created"),
            models.Index(fields=["list", "status"], name="sub_list_status"),
            # PostgreSQL also gets pattern indexes on email and phone (exact and prefix search)
            # and trigram indexes on email and UPPER(name) (free text): migrations 0002/0003,
            # skipped on SQLite.
        ]

    def __str__(self) -> str:
        return self.email or self.phone

    @property
    def channel_addresses(self) -> dict[str, str]:
        """The addresses this subscriber can be messaged on, by channel."""
        addresses = {}
        if self.email:
            addresses[Channel.EMAIL] = self.email
        if self.phone:
            addresses[Channel.SMS] = self.phone
        return addresses


class Suppression(models.Model):
    """An address no campaign of this owner may message again, whatever list it is on."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="suppressions")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=254)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices, default=SuppressionReason.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "channel", "address"], name="suppression_unique_address")
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}"
