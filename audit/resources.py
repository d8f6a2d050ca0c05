from import_export import fields, resources

from audit.models import AuditLog
from inboxerr.csvsafe import SafeExportMixin


class AuditLogResource(SafeExportMixin, resources.ModelResource):
    """Export of the audit trail from the admin (CSV, XLSX...), formula-safe."""

    actor = fields.Field(attribute="actor__username", column_name="actor")

    class Meta:
        model = AuditLog
        fields = ("created_at", "actor", "action", "entity_type", "entity_id", "user_action", "before", "after", "metadata")
        export_order = fields
