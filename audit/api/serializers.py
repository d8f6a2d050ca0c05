from datetime import timedelta

from rest_framework import serializers

from audit.models import AuditLog


class AuditLogSerializer(serializers.ModelSerializer):
    # Null for what the system did on its own (a worker, a sweeper).
    actor = serializers.CharField(source="actor.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = AuditLog
        fields = [
            "id", "actor", "action", "entity_type", "entity_id", "user_action",
            "before", "after", "metadata", "created_at",
        ]
        read_only_fields = fields


class AuditLogParamsSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    skip = serializers.IntegerField(min_value=0, max_value=10**12, default=0)
    entity_type = serializers.CharField(required=False, allow_blank=True, max_length=32)
    action = serializers.CharField(required=False, allow_blank=True, max_length=32)
    start_date = serializers.DateTimeField(required=False, help_text="ISO 8601 date or date-time")
    end_date = serializers.DateTimeField(required=False, help_text="ISO 8601 date or date-time")

    def validate(self, attrs: dict) -> dict:
        raw_end = str(self.initial_data.get("end_date", ""))
        if attrs.get("end_date") and len(raw_end) == 10:
            # A date alone means the whole of that day.
            attrs["end_date"] += timedelta(days=1) - timedelta(microseconds=1)
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and start > end:
            raise serializers.ValidationError({"end_date": "must not be before start_date"})
        return attrs


class AuditLogPageSerializer(serializers.Serializer):
    logs = AuditLogSerializer(many=True)
    total_count = serializers.IntegerField()
    has_more = serializers.BooleanField()
