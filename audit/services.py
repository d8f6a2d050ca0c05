"""The one function every write calls to record what happened."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from inboxerr.actors import Actor


def audit_record(
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object = "",
    user_action: str,
    owner_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    metadata: dict | None = None,
) -> AuditLog:
    """Write one audit row. Call it inside the transaction that makes the change, so the row
    exists exactly when the change does."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record() must run inside the transaction that makes the change")
    return AuditLog.objects.create(
        actor_id=actor.user_id,
        owner_id=owner_id,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        user_action=user_action[:500],
        before=before,
        after=after,
        metadata={**actor.metadata(), **(metadata or {})},
    )


@transaction.atomic
def audit_purge(*, actor: Actor, older_than_days: int) -> int:
    """Delete audit rows older than the given age; the purge itself is audited."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = AuditLog.objects.filter(created_at__lt=cutoff).delete()
    audit_record(
        actor=actor,
        action="delete",
        entity_type="audit_log",
        user_action=f"Purged {deleted} audit rows older than {older_than_days} days",
        metadata={"deleted": deleted, "cutoff": cutoff.isoformat()},
    )
    return deleted
