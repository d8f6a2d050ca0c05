"""Endpoints and deliveries in the admin, owner-scoped. Changes go through services (audited):
the pages are read-only and the actions call endpoint_update / delivery_replay."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from inboxerr.admin_tools import OwnedAdmin, admin_actor
from inboxerr.errors import ServiceError
from inboxerr.webhooks import services
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyMixin, OwnedAdmin):
    list_display = ["url", "owner", "is_active", "disabled_reason", "failing_since", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["owner"]
    search_fields = ["url"]
    exclude = ["secret", "previous_secret"]  # secrets are shown once, via the API
    actions = ["reactivate", "deactivate"]

    @admin.action(description="Reactivate selected endpoints", permissions=["view"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description="Deactivate selected endpoints", permissions=["view"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, False)

    def _set_active(self, request: HttpRequest, queryset: QuerySet, active: bool) -> None:
        if not request.user.has_perm("webhooks.change_webhookendpoint"):
            self.message_user(request, "You may not change webhook endpoints", level=messages.ERROR)
            return
        for endpoint in queryset:
            services.endpoint_update(actor=admin_actor(request), endpoint=endpoint, data={"is_active": active})
        self.message_user(request, f"{len(queryset)} endpoint(s) updated")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, OwnedAdmin):
    owner_path = "endpoint__owner"
    list_display = ["webhook_id", "event", "endpoint", "status", "attempts", "response_code",
                    "response_body_excerpt", "last_error", "next_attempt_at", "created_at"]
    list_filter = ["status", "event"]
    list_select_related = ["endpoint"]
    raw_id_fields = ["endpoint"]
    search_fields = ["webhook_id"]
    show_full_result_count = False
    actions = ["replay"]

    @admin.action(description="Replay selected deliveries", permissions=["view"])
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not request.user.has_perm("webhooks.change_webhookendpoint"):
            self.message_user(request, "You may not replay webhook deliveries", level=messages.ERROR)
            return
        replayed = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                services.delivery_replay(actor=admin_actor(request), delivery=delivery)
                replayed += 1
            except ServiceError as exc:
                self.report(request, exc)
        self.message_user(request, f"{replayed} delivery(ies) queued again")
