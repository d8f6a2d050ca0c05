"""Seed 003's batch API and outbox monitoring, mounted at /api/v1/batch/ and /api/v1/outbox/.
Views parse, call one service or selector (campaigns.batches, campaigns.selectors), and shape
the seed's bodies; errors keep the project's JSON shape with `"status": "error"` added."""

from datetime import UTC

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import batches, selectors
from campaigns.models import Message, MessageBatch
from inboxerr.api import actor, parse
from inboxerr.errors import InvalidInput
from inboxerr.exceptions import exception_handler_adding
from inboxerr.middleware import BodyLimit
from inboxerr.openapi import error_response, refuses_unknown_fields
from inboxerr.parsers import StrictJSONParser

TAG = ["batches"]
VIEW = ["campaigns.view_messagebatch"]


class ErrorStatusMixin:
    """Errors in the seed's words: `{"status": "error", "detail": ...}`."""

    error_fields = {"status": "error"}  # also in the refusals of BodyLimitMiddleware

    def get_exception_handler(self):
        return _exception_handler


_exception_handler = exception_handler_adding(**ErrorStatusMixin.error_fields)


class BatchAPIView(ErrorStatusMixin, APIView):
    pass


# --- Shapes ----------------------------------------------------------------------------------


@refuses_unknown_fields
class BatchItemInputSerializer(serializers.Serializer):
    """One item (documentation only: items are checked by campaigns.batches.ItemChecker)."""

    request_id = serializers.CharField(max_length=200, help_text="Your id for the request; unique within the batch.")
    vendor_name = serializers.CharField(max_length=100, required=False, allow_null=True,
                                        help_text="Optional provider tag, counted in vendor_counts.")
    channel = serializers.ChoiceField(choices=["email", "sms"])
    recipient = serializers.CharField(max_length=254, help_text="Email address or phone number (E.164 or national).")
    template_id = serializers.IntegerField(required=False, help_text="One of your active templates of this channel.")
    variables = serializers.DictField(required=False, help_text="Merge field values for the template or content.")
    content = serializers.CharField(required=False, max_length=batches.CONTENT_MAX_CHARS,
                                    help_text="The message itself (merge fields allowed), instead of a template.")
    subject = serializers.CharField(max_length=500, required=False, help_text="Email only; required with content.")


@refuses_unknown_fields
class BatchProcessSerializer(serializers.Serializer):
    items = serializers.ListField(child=BatchItemInputSerializer(), min_length=1)


class BatchProcessDataSerializer(serializers.Serializer):
    batch_id = serializers.CharField()
    timestamp = serializers.CharField(help_text="When the batch was stored (UTC).")
    total_json_objects = serializers.IntegerField()
    vendor_counts = serializers.DictField(child=serializers.IntegerField())
    unique_vendors = serializers.IntegerField()
    processing_time_ms = serializers.FloatField()


class BatchProcessResponseSerializer(serializers.Serializer):
    status = serializers.CharField()
    message = serializers.CharField()
    data = BatchProcessDataSerializer()


class BatchSerializer(serializers.ModelSerializer):
    batch_sequence = serializers.IntegerField(source="sequence")
    owner = serializers.CharField(source="owner.username")
    items = serializers.SerializerMethodField()
    progress_percentage = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = MessageBatch
        fields = ["batch_id", "batch_sequence", "owner", "status", "status_reason", "total_items", "vendor_counts",
                  "items", "progress_percentage", "processing_time_ms", "created_at", "started_at", "committed_at",
                  "finished_at", "links"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_items(self, batch: MessageBatch) -> dict:
        """Exact counts by status when the view gives them (context "item_counts"), else the
        publisher's running counters."""
        return self.context.get("item_counts") or {
            "sent": batch.sent_count, "failed": batch.failed_count, "skipped": batch.skipped_count,
            "unsent": batch.unsent_count}

    def get_progress_percentage(self, batch: MessageBatch) -> float:
        exact = self.context.get("item_counts")
        if exact is None or not batch.total_items:
            return batch.progress
        done = exact["sent"] + exact["failed"] + exact["skipped"]
        return round(100.0 * done / batch.total_items, 1)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_links(self, batch: MessageBatch) -> dict:
        base = f"/api/v1/outbox/batch/{batch.batch_id}"
        return {"status": f"{base}/status", "items": f"{base}/items", "retry": f"{base}/retry"}


class BatchItemSerializer(serializers.ModelSerializer):
    item_id = serializers.UUIDField(source="uid")
    batch_id = serializers.SerializerMethodField()
    item_sequence = serializers.IntegerField(source="sequence")
    status = serializers.SerializerMethodField()
    sent = serializers.SerializerMethodField()
    publish_id = serializers.SerializerMethodField()
    request_data = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["item_id", "batch_id", "item_sequence", "request_id", "vendor_name", "channel", "recipient", "status",
                  "sent", "publish_id", "attempts", "next_attempt_at", "last_error", "skip_reason", "request_data",
                  "created_at", "sent_at"]
        read_only_fields = fields

    def get_batch_id(self, item: Message) -> str:
        return self.context["batch"].batch_id

    @extend_schema_field(serializers.ChoiceField(choices=batches.ITEM_STATUSES))
    def get_status(self, item: Message) -> str:
        return batches.ITEM_STATUS[item.status]

    def get_sent(self, item: Message) -> bool:
        return item.status == "sent"

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_publish_id(self, item: Message) -> str | None:
        return item.provider_message_id or None

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_request_data(self, item: Message) -> dict:
        data = {"template_id": item.template_id, "variables": item.variables, "content": item.content,
                "subject": item.subject}
        return {key: value for key, value in data.items() if value not in (None, "")}


class ItemListParamsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=batches.ITEM_STATUSES, required=False)


class PendingParamsSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


_STATUS = inline_serializer("OutboxStatus", {
    "status": serializers.ChoiceField(choices=batches.OUTBOX_STATES),
    "running": serializers.BooleanField(), "changed_at": serializers.DateTimeField(allow_null=True),
    "changed_by": serializers.CharField(), "active_publishers": serializers.IntegerField(),
    "batches": serializers.DictField(child=serializers.IntegerField()),
    "items_unsent": serializers.IntegerField(),
    "current_batches": BatchSerializer(many=True),
    "config": serializers.DictField(),
})
_SWITCHED = inline_serializer("OutboxSwitched", {
    "status": serializers.ChoiceField(choices=batches.OUTBOX_STATES), "message": serializers.CharField(),
    "running": serializers.BooleanField(), "changed_at": serializers.DateTimeField(),
})
_PENDING = inline_serializer("PendingBatches", {
    "total_pending": serializers.IntegerField(), "batches": BatchSerializer(many=True),
})
_RETRIED = inline_serializer("BatchRetried", {
    "status": serializers.CharField(), "message": serializers.CharField(), "requeued_items": serializers.IntegerField(),
    "batch": BatchSerializer(),
})


# --- Views ------------------------------------------------------------------------------------


class BatchProcessView(BatchAPIView):
    required_perms = {"POST": ["campaigns.add_messagebatch"]}
    parser_classes = [StrictJSONParser]
    body_limit = BodyLimit("BATCH_MAX_BYTES")

    @extend_schema(
        tags=TAG, request=BatchProcessSerializer, responses={200: BatchProcessResponseSerializer},
        examples=[OpenApiExample("Two items", request_only=True, value=[
            {"request_id": "4473", "vendor_name": "EVICORE", "channel": "email", "recipient": "ann@example.com",
             "template_id": 1, "variables": {"order_no": "A-17"}},
            {"request_id": "4474", "vendor_name": "Cohere", "channel": "sms", "recipient": "+14155550100",
             "content": "Your code is {{ code }}", "variables": {"code": "8812"}},
        ])],
    )
    def post(self, request: Request) -> Response:
        """Store a batch of message requests (a JSON array, or an object with an `items` array) in
        one transaction; the publisher sends them in order after the batches you sent before.
        Any invalid item: 400 naming each bad item by index, nothing stored."""
        data = request.data
        items = data.get("items") if isinstance(data, dict) else data
        if isinstance(data, dict) and set(data) - {"items"}:
            unknown = sorted(set(data) - {"items"})[0]
            raise InvalidInput(f"{unknown}: unknown field (send an array, or an object with 'items')",
                                       field=unknown)
        batch = batches.batch_ingest(actor=actor(request), owner=request.user, items=items)
        return Response({
            "status": "success",
            "message": "Batch processed successfully with metadata",
            "data": {
                "batch_id": batch.batch_id,
                "timestamp": batch.created_at.astimezone(UTC).replace(tzinfo=None).isoformat(),
                "total_json_objects": batch.total_items,
                "vendor_counts": batch.vendor_counts,
                "unique_vendors": len(batch.vendor_counts),
                "processing_time_ms": batch.processing_time_ms,
            },
        })


class OutboxStatusView(BatchAPIView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=TAG, responses=_STATUS)
    def get(self, request: Request) -> Response:
        """The publisher's switch, how many publishers hold a stream now, and your batches by status."""
        switch = batches.outbox_switch()
        overview = selectors.outbox_overview(request.user)
        return Response({
            "status": "running" if switch.enabled else "stopped",
            "running": switch.enabled,
            "changed_at": switch.changed_at,
            "changed_by": switch.changed_by,
            "active_publishers": overview["active_publishers"],
            "batches": overview["batches"],
            "items_unsent": overview["items_unsent"],
            "current_batches": BatchSerializer(overview["current_batches"], many=True).data,
            "config": {"batch_size": settings.OUTBOX_BATCH_SIZE,
                       "poll_interval_seconds": settings.OUTBOX_POLL_INTERVAL_SECONDS,
                       "max_items_per_batch": settings.BATCH_MAX_ITEMS},
        })


def _switch_view(enabled: bool):
    verb = "started" if enabled else "stopped"

    class SwitchView(BatchAPIView):
        required_perms = {"POST": ["campaigns.control_outbox"]}

        @extend_schema(tags=TAG, request=None, responses=_SWITCHED,
                       description=f"The publisher is {verb} for every stream; workers notice within "
                                   "OUTBOX_POLL_INTERVAL_SECONDS. Needs the 'control outbox' permission.")
        def post(self, request: Request) -> Response:
            switch = batches.outbox_set(actor=actor(request), enabled=enabled)
            return Response({"status": "running" if switch.enabled else "stopped",
                             "message": f"Outbox publisher {verb}", "running": switch.enabled,
                             "changed_at": switch.changed_at})

    SwitchView.__name__ = SwitchView.__qualname__ = f"Outbox{'Start' if enabled else 'Stop'}View"
    return SwitchView


OutboxStartView = _switch_view(True)
OutboxStopView = _switch_view(False)


class PendingBatchesView(BatchAPIView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=TAG, parameters=[PendingParamsSerializer], responses=_PENDING)
    def get(self, request: Request) -> Response:
        """Open batches in the order the publisher takes them (per owner: the one processing, then
        by batch_sequence)."""
        params = parse(PendingParamsSerializer, request.query_params)
        pending = selectors.pending_batches(request.user)
        return Response({
            "total_pending": pending.count(),
            "batches": BatchSerializer(pending.select_related("owner")[:params["limit"]], many=True).data,
        })


class BatchStatusView(BatchAPIView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=TAG, responses=BatchSerializer)
    def get(self, request: Request, batch_id: str) -> Response:
        """A batch with its items counted by status."""
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        counts = batches.batch_item_counts(batch)
        return Response(BatchSerializer(batch, context={"item_counts": counts}).data)


class BatchItemsView(ErrorStatusMixin, ListAPIView):
    required_perms = {"GET": VIEW}
    serializer_class = BatchItemSerializer

    @extend_schema(tags=TAG, parameters=[ItemListParamsSerializer])
    def get(self, request: Request, *args, **kwargs) -> Response:
        """The batch's items in item_sequence order (paginated: page, limit), optionally one status."""
        return super().get(request, *args, **kwargs)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "batch": self.batch}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        self.batch = selectors.batch_get(user=self.request.user, batch_id=self.kwargs["batch_id"])
        params = parse(ItemListParamsSerializer, self.request.query_params)
        qs = Message.objects.filter(batch=self.batch).order_by("sequence")
        if params.get("status"):
            wanted = [status for status, name in batches.ITEM_STATUS.items() if name == params["status"]]
            qs = qs.filter(status__in=wanted)
        return qs


class BatchRetryView(BatchAPIView):
    required_perms = {"POST": ["campaigns.change_messagebatch"]}

    @extend_schema(tags=TAG, request=None, responses={200: _RETRIED, 409: error_response("The batch has not failed")})
    def post(self, request: Request, batch_id: str) -> Response:
        """Requeue only the failed items of a failed batch; it is sent next in its stream. 409 if
        the batch has not failed."""
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        requeued = batches.batch_retry(actor=actor(request), batch=batch)
        batch.refresh_from_db()
        return Response({"status": "success", "message": f"{requeued:,} failed items requeued",
                         "requeued_items": requeued, "batch": BatchSerializer(batch).data})
