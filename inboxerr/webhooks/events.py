"""Every webhook event name, declared once. Callers pass these to services.event_emit."""

from django.db import models


class WebhookEvent(models.TextChoices):
    IMPORT_COMPLETED = "import.completed", "Import completed"
    IMPORT_FAILED = "import.failed", "Import failed"
    CAMPAIGN_STARTED = "campaign.started", "Campaign started"
    CAMPAIGN_COMPLETED = "campaign.completed", "Campaign completed"
    CAMPAIGN_PAUSED = "campaign.paused", "Campaign paused"
    BATCH_COMMITTED = "batch.committed", "Batch committed"
    BATCH_FAILED = "batch.failed", "Batch failed"
    BULK_EMAIL_COMPLETED = "bulk_email.completed", "Bulk email completed"
    # Sent to one endpoint on request (services.endpoint_send_test), never emitted by a change.
    TEST = "webhook.test", "Test event"


# What an endpoint can subscribe to: every event a change emits.
SUBSCRIBABLE_EVENTS = [(value, label) for value, label in WebhookEvent.choices if value != WebhookEvent.TEST]
