from django.contrib import admin
from django.http import HttpRequest

from imports.models import ImportJob
from inboxerr.admin_tools import OwnedAdmin


@admin.register(ImportJob)
class ImportJobAdmin(OwnedAdmin):
    list_display = ("id", "list_name", "owner", "status", "processed_rows", "total_rows", "created_at")
    list_select_related = ("owner",)
    list_filter = ("status", "source")
    search_fields = ("=id", "list_name", "filename", "=sha256")
    show_full_result_count = False
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return False
