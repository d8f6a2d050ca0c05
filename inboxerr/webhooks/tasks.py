"""django-q2 entry points: take ids, call the service."""

from inboxerr.webhooks import services


def deliver(delivery_id: int) -> None:
    services.delivery_attempt(delivery_id)


def sweep_due_deliveries() -> int:
    """Scheduled every minute: enqueue deliveries whose retry is due (or whose worker died).
    Enqueueing twice is harmless: delivery_attempt claims the row before sending."""
    due = services.deliveries_due()
    services.deliveries_enqueue(due)
    return len(due)
