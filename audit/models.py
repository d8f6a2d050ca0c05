from django.conf import settings
from django.db import models


class AuditLog(models.Model):
    """One row per change: who did what to which entity, with before/after snapshots.

    `action` is the verb (create, update, delete, import, export, ...), `entity_type` the noun
    (subscriber, list, import_job, ...). `owner` is whose data was touched, so an owner sees the
    trail of their own lists even when a superuser made the change.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=32)
    entity_type = models.CharField(max_length=32)
    entity_id = models.CharField(max_length=64, blank=True)
    user_action = models.CharField(max_length=500)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="audit_owner_created"),
            models.Index(fields=["entity_type", "action", "-created_at"], name="audit_entity_action"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.entity_type} {self.entity_id}"
