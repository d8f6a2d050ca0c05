"""django-import-export resources for the admin's small-table import and export (suppression
lists from another tool, an export for a spreadsheet). The million-row subscriber path is the
streaming import pipeline in imports/, not this: django-import-export builds a model instance
per row and is 40-200x slower there (measured against a COPY-based load of the same file)."""

from import_export import fields, resources
from tablib import Dataset

from audit.services import audit_record
from inboxerr.actors import Actor
from inboxerr.errors import InvalidInput
from inboxerr.csvsafe import SafeExportMixin
from subscribers.models import Suppression, SuppressionReason
from subscribers.services import _normalize_address


class SuppressionResource(SafeExportMixin, resources.ModelResource):
    """Rows: channel (email|sms), address, reason (default manual). Imported rows belong to the
    importing user; addresses are normalised like every other way in, and the import writes one
    summarising audit row in its transaction."""

    owner = fields.Field(attribute="owner__username", column_name="owner", readonly=True)

    class Meta:
        model = Suppression
        fields = ("channel", "address", "reason", "owner", "created_at")
        export_order = fields
        import_id_fields = ("channel", "address")
        skip_unchanged = True
        use_transactions = True

    def __init__(self, *, actor: Actor | None = None, **kwargs):
        super().__init__(**kwargs)
        self.actor = actor

    def get_queryset(self):
        qs = Suppression.objects.select_related("owner")
        user = self.actor.user if self.actor else None
        return qs if user is None or user.is_superuser else qs.filter(owner=user)

    def before_import_row(self, row, **kwargs) -> None:
        channel = str(row.get("channel") or "").strip().lower()
        row["channel"] = channel
        row["reason"] = str(row.get("reason") or SuppressionReason.MANUAL).strip().lower()
        if row["reason"] not in SuppressionReason.values:
            raise ValueError(f"reason: must be one of {', '.join(SuppressionReason.values)}")
        try:
            row["address"] = _normalize_address(channel, str(row.get("address") or ""))
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    def get_instance(self, instance_loader, row):
        return self.get_queryset().filter(channel=row["channel"], address=row["address"]).first()

    def import_instance(self, instance, row, **kwargs) -> None:
        super().import_instance(instance, row, **kwargs)
        if instance.owner_id is None and self.actor is not None:
            instance.owner = self.actor.user

    def after_import(self, dataset: Dataset, result, **kwargs) -> None:
        if self.actor is None or kwargs.get("dry_run"):
            return
        totals = result.totals
        audit_record(
            actor=self.actor,
            action="import",
            entity_type="suppression",
            owner_id=self.actor.user_id,
            user_action=f"Imported suppressions: {totals.get('new', 0)} new, {totals.get('skip', 0)} unchanged, "
            f"{totals.get('error', 0) + totals.get('invalid', 0)} refused",
            metadata={k: v for k, v in totals.items()},
        )
