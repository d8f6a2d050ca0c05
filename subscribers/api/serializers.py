"""Input and output shapes of the subscribers API (seed 000). Input serializers check types and
ranges; the services own the rules (address syntax, uniqueness, safety checks)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inboxerr.openapi import refuses_unknown_fields
from subscribers.models import Channel, KeyField, Subscriber, SubscriberStatus, Suppression, SuppressionReason
from subscribers.selectors import SEARCH_MODES, SORTABLE_FIELDS


# Not blank once trimmed: Python's whitespace counts \x1c-\x1f and \x85, a pattern's \s does not.
@extend_schema_field({"type": "string", "maxLength": 200, "pattern": r"^[^/]*[^/\s\u001c-\u001f\u0085][^/]*$",
                      "description": "A list's name: not blank, no '/' (names are used in URLs)."})
class ListNameField(serializers.CharField):
    """A list's name in a body, as the services take it (subscribers.services._validate_list_fields)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)


class SubscriberSerializer(serializers.ModelSerializer):
    _id = serializers.CharField(source="pk", read_only=True, help_text="The seed's `_id`: same as `id`.")
    list = serializers.CharField(source="list.name", read_only=True)

    class Meta:
        model = Subscriber
        fields = [
            "_id",
            "id",
            "email",
            "phone",
            "name",
            "status",
            "list",
            "standard_fields",
            "custom_fields",
            "import_job",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class FieldWarningSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The field left out, e.g. `phone` or `custom_fields.tags`.")
    value = serializers.CharField(help_text="The value as it was sent.")
    reason = serializers.CharField()


class SubscriberWrittenSerializer(SubscriberSerializer):
    """A subscriber just written, with the secondary fields left out of it (a phone that is not a
    valid number on an email-keyed list, say): only the key decides whether a record is taken."""

    warnings = FieldWarningSerializer(many=True, read_only=True, default=list)

    class Meta(SubscriberSerializer.Meta):
        fields = [*SubscriberSerializer.Meta.fields, "warnings"]
        read_only_fields = fields


class SubscriberUpdatedSerializer(serializers.Serializer):
    message = serializers.CharField()
    subscriber = SubscriberSerializer()
    warnings = FieldWarningSerializer(many=True, help_text="Fields left out of the update, and why.")


@refuses_unknown_fields
class SubscriberWriteSerializer(serializers.Serializer):
    list = ListNameField(help_text="List name; the list is created on first use.")
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=SubscriberStatus.choices, required=False)
    standard_fields = serializers.DictField(required=False)
    custom_fields = serializers.DictField(required=False)


    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError(
                {name: "is not a subscriber field; put extra data in standard_fields or custom_fields" for name in unknown}
            )
        return attrs


@refuses_unknown_fields
class SubscriberUpdateSerializer(SubscriberWriteSerializer):
    list = ListNameField(required=False, help_text="Move to another list by name.")


class StatusParamsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SubscriberStatus.choices)


class ListCreateSerializer(serializers.Serializer):
    name = ListNameField()
    description = serializers.CharField(required=False, allow_blank=True, default="")
    key_field = serializers.ChoiceField(choices=KeyField.choices, default=KeyField.EMAIL)


class ListsParamsSerializer(serializers.Serializer):
    simple = serializers.BooleanField(default=False, help_text="Only names and counts.")


class ListSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False)
    name = serializers.CharField()
    count = serializers.IntegerField()
    description = serializers.CharField(required=False)
    key_field = serializers.CharField(required=False)
    owner = serializers.CharField(required=False)
    created_at = serializers.DateTimeField(required=False)


MAX_PAGE = 1_000_000


class SearchParamsSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, default="", max_length=254)
    list_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    status = serializers.ChoiceField(choices=SubscriberStatus.choices, required=False)
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    sort_by = serializers.ChoiceField(choices=SORTABLE_FIELDS, default="created_at")
    sort_order = serializers.ChoiceField(choices=("asc", "desc"), default="desc")
    search_mode = serializers.ChoiceField(choices=SEARCH_MODES, default="smart")
    owner = serializers.CharField(required=False, allow_blank=True, help_text="Superusers: whose list `list_name` names.")


class ListPageParamsSerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    search = serializers.CharField(required=False, allow_blank=True, default="", max_length=254)
    owner = serializers.CharField(required=False, allow_blank=True, help_text="Superusers: whose list this is.")


class ListDeleteParamsSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    owner = serializers.CharField(required=False, allow_blank=True, help_text="Superusers: whose list this is.")


class OwnerParamSerializer(serializers.Serializer):
    owner = serializers.CharField(required=False, allow_blank=True, help_text="Superusers: whose list this is.")


class BulkSerializer(serializers.Serializer):
    list_name = ListNameField()
    # Any JSON value: a record that is not an object (null included) is reported by its position
    # with the other bad records, not refused with the whole call.
    subscribers = serializers.ListField(child=serializers.JSONField(allow_null=True), allow_empty=False, min_length=1,
                                        help_text="Records: objects with email/phone, name, status and any other field.")


class BulkWarningSerializer(FieldWarningSerializer):
    record = serializers.IntegerField(help_text="The record's position in `subscribers`, from 0.")


class BulkResultSerializer(serializers.Serializer):
    message = serializers.CharField()
    processed = serializers.IntegerField()
    failed = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.CharField())
    warning_count = serializers.IntegerField(help_text="Fields left out of records that were kept (a bad secondary field).")
    warnings = BulkWarningSerializer(many=True, help_text="The first 1,000 of them.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class AnalyzeFieldsSerializer(serializers.Serializer):
    listIds = serializers.ListField(child=ListNameField(), allow_empty=False, min_length=1,
                                    max_length=100)


class AnalyzeFieldsResultSerializer(serializers.Serializer):
    universal = serializers.ListField(child=serializers.CharField())
    standard = serializers.ListField(child=serializers.CharField())
    custom = serializers.ListField(child=serializers.CharField())


class SearchPaginationSerializer(serializers.Serializer):
    current_page = serializers.IntegerField()
    total_pages = serializers.IntegerField()
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    has_next = serializers.BooleanField()
    has_prev = serializers.BooleanField()
    total_is_estimate = serializers.BooleanField(required=False)


class SearchPerformanceSerializer(serializers.Serializer):
    query_time = serializers.CharField()
    strategy = serializers.CharField()
    results_count = serializers.IntegerField()


class SearchResultSerializer(serializers.Serializer):
    subscribers = SubscriberSerializer(many=True)
    pagination = SearchPaginationSerializer()
    performance = SearchPerformanceSerializer()


class ListPagePaginationSerializer(serializers.Serializer):
    current_page = serializers.IntegerField()
    total_pages = serializers.IntegerField()
    total = serializers.IntegerField()
    page_size = serializers.IntegerField()
    has_more = serializers.BooleanField()
    total_is_estimate = serializers.BooleanField(required=False)


class ListPageSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    subscribers = SubscriberSerializer(many=True)
    pagination = ListPagePaginationSerializer()


class ActionMessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class ListDeleteResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    deletion_summary = serializers.DictField()
    cleanup_actions = serializers.DictField()
    performance = serializers.DictField()


class SuppressionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    channel = serializers.ChoiceField(choices=Channel.choices)
    reason = serializers.ChoiceField(choices=SuppressionReason.choices, default=SuppressionReason.MANUAL)

    class Meta:
        model = Suppression
        fields = ["id", "owner", "channel", "address", "reason", "created_at"]
        read_only_fields = ["id", "owner", "created_at"]
