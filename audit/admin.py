from django.contrib import admin
from django.http import HttpRequest

from import_export.admin import ExportMixin

from audit.models import AuditLog
from audit.resources import AuditLogResource
from inboxerr.admin_tools import EstimatedCountPaginator, OwnedAdmin


@admin.register(AuditLog)
class AuditLogAdmin(ExportMixin, OwnedAdmin):
    """The audit trail, read-only: rows are written only by the services that make changes."""

    resource_classes = [AuditLogResource]

    list_display = ("created_at", "actor", "action", "entity_type", "entity_id", "user_action")
    list_select_related = ("actor",)
    # A date filter, not date_hierarchy: the hierarchy's year/month links need a DISTINCT over
    # every row's date on each page view, the filter is a range on the created_at index.
    list_filter = ("created_at", "action", "entity_type")
    search_fields = ("=entity_id", "user_action")  # both served by expression indexes (migration 0002)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False  # `manage.py purge_audit` is the one way rows leave
