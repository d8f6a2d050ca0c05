"""Endpoints and deliveries in the admin, owner-scoped. Every change goes through the services the
API uses (audited, the same URL rules): add, edit and delete an endpoint, rotate its secret, send
it a test event, replay a delivery. A secret is shown once, in a message, when it is made."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from inboxerr.admin_tools import OwnedAdmin, admin_actor
from inboxerr.errors import ServiceError
from inboxerr.webhooks import services
from inboxerr.webhooks.events import SUBSCRIBABLE_EVENTS
from inboxerr.webhooks.models import WebhookDelivery, WebhookEndpoint


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="Public http(s) URL that receives the events.")
    events = forms.MultipleChoiceField(
        choices=SUBSCRIBABLE_EVENTS, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None checked: every event.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("owner", "url", "events", "is_active")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OwnedAdmin):
    form = EndpointForm
    list_display = ["url", "owner", "is_active", "disabled_reason", "failing_since", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["owner"]
    search_fields = ["url"]
    actions = ["send_test_event", "rotate_secret", "reactivate", "deactivate"]

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        if obj is None:
            return ["owner", "url", "events", "is_active"]
        return ["owner", "url", "events", "is_active", "disabled_reason", "failing_since", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        # The secret is never on a page; an endpoint keeps its owner.
        return ["owner", "disabled_reason", "failing_since", "created_at"] if obj else []

    def service_save(self, request: HttpRequest, obj: WebhookEndpoint, form: forms.ModelForm,
                     change: bool) -> WebhookEndpoint:
        actor = admin_actor(request)
        data = {"url": obj.url, "events": form.cleaned_data.get("events", []), "is_active": obj.is_active}
        if change:
            return services.endpoint_update(actor=actor, endpoint=obj, data=data)
        owner = obj.owner if request.user.is_superuser and obj.owner_id else request.user
        endpoint = services.endpoint_create(actor=actor, owner=owner, **data)
        self._show_secret(request, endpoint)
        return endpoint

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        services.endpoint_delete(actor=admin_actor(request), endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:  # a page of endpoints at most, each audited
            services.endpoint_delete(actor=admin_actor(request), endpoint=endpoint)

    def _show_secret(self, request: HttpRequest, endpoint: WebhookEndpoint) -> None:
        self.message_user(
            request, f"Signing secret for {endpoint.url}: {endpoint.secret} — copy it now, it is not shown again.",
            level=messages.WARNING,
        )

    @admin.action(description="Send a test event to selected endpoints", permissions=["change"])
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            try:
                delivery = services.endpoint_send_test(actor=admin_actor(request), endpoint=endpoint)
            except ServiceError as exc:
                self.message_user(request, f"{endpoint.url}: {exc.message}", level=messages.ERROR)
                continue
            self.message_user(request, f"Test event {delivery.webhook_id} queued for {endpoint.url}.")

    @admin.action(description="Rotate the signing secret of selected endpoints", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            self._show_secret(request, services.endpoint_rotate_secret(actor=admin_actor(request), endpoint=endpoint))

    @admin.action(description="Reactivate selected endpoints", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description="Deactivate selected endpoints", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._set_active(request, queryset, False)

    def _set_active(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint], active: bool) -> None:
        for endpoint in queryset:
            services.endpoint_update(actor=admin_actor(request), endpoint=endpoint, data={"is_active": active})
        self.message_user(request, f"{len(queryset)} endpoint(s) updated")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OwnedAdmin):
    owner_path = "endpoint__owner"
    list_display = ["webhook_id", "event", "endpoint", "status", "attempts", "response_code",
                    "response_body_excerpt", "last_error", "next_attempt_at", "created_at"]
    list_filter = ["status", "event"]
    list_select_related = ["endpoint"]
    raw_id_fields = ["endpoint"]
    search_fields = ["webhook_id"]
    show_full_result_count = False
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries are written by the changes that emit events

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False

    @admin.action(description="Replay selected deliveries", permissions=["view"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        # Replaying changes the endpoint's traffic, not the delivery: the endpoint's permission decides.
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
