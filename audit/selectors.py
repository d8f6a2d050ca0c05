from datetime import datetime

from django.db.models import Q, QuerySet

from audit.models import AuditLog


def audit_logs_for_user(user) -> QuerySet[AuditLog]:
    """A superuser reads the whole trail; anyone else the rows about their data or their acts."""
    qs = AuditLog.objects.select_related("actor")
    return qs if user.is_superuser else qs.filter(Q(owner=user) | Q(actor=user))


def audit_log_page(
    *,
    user,
    limit: int,
    skip: int,
    entity_type: str | None = None,
    action: str | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
) -> dict:
    """Seed 000 `GET /audit/logs`: newest first, filtered, with total_count and has_more."""
    qs = audit_logs_for_user(user)
    if entity_type:
        qs = qs.filter(entity_type=entity_type)
    if action:
        qs = qs.filter(action=action)
    if start_date:
        qs = qs.filter(created_at__gte=start_date)
    if end_date:
        qs = qs.filter(created_at__lte=end_date)
    total = qs.count()
    logs = list(qs.order_by("-created_at", "-id")[skip : skip + limit])
    return {"logs": logs, "total_count": total, "has_more": skip + len(logs) < total}
