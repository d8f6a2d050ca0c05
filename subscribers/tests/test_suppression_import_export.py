"""django-import-export on the small tables: suppressions in and out, audit trail out."""

from tablib import Dataset

from audit.models import AuditLog
from audit.resources import AuditLogResource
from inboxerr.actors import Actor
from subscribers.models import Suppression
from subscribers.resources import SuppressionResource
from subscribers.tests.factories import SuppressionFactory


def _dataset(*rows) -> Dataset:
    return Dataset(*rows, headers=["channel", "address", "reason"])


def test_suppression_import_normalises_owns_and_audits(owner):
    resource = SuppressionResource(actor=Actor(user=owner, source="admin"))
    result = resource.import_data(
        _dataset(["email", " Bob@Example.COM ", "bounced"], ["sms", "(415) 555-2671", ""]), dry_run=False
    )
    assert not result.has_errors() and not result.has_validation_errors()
    stored = set(Suppression.objects.values_list("owner_id", "channel", "address", "reason"))
    assert stored == {(owner.pk, "email", "bob@example.com", "bounced"), (owner.pk, "sms", "+14155552671", "manual")}
    row = AuditLog.objects.get(entity_type="suppression", action="import")
    assert row.owner_id == owner.pk and "2 new" in row.user_action


def test_suppression_import_refuses_bad_rows_and_writes_nothing(owner):
    resource = SuppressionResource(actor=Actor(user=owner, source="admin"))
    result = resource.import_data(
        _dataset(["email", "ok@example.com", "manual"], ["email", "not-an-address", "manual"], ["fax", "1", "manual"]),
        dry_run=False, raise_errors=False,
    )
    assert result.has_errors() or result.has_validation_errors()
    messages = " ".join(str(e.error) for row in result.rows for e in row.errors)
    assert "is not a valid email address" in messages and "channel" in messages
    assert not Suppression.objects.exists()


def test_suppression_export_is_formula_safe_and_scoped_to_the_owner(owner, outsider):
    SuppressionFactory(owner=owner, address="=cmd|'/c calc'!A1@x.io")
    SuppressionFactory(owner=outsider, address="theirs@example.com")
    exported = SuppressionResource(actor=Actor(user=owner, source="admin")).export()
    assert [row[1] for row in exported] == ["'=cmd|'/c calc'!A1@x.io"]


def test_audit_log_export_is_formula_safe(owner):
    AuditLog.objects.create(actor=owner, owner=owner, action="update", entity_type="list", user_action="@SUM(A1)")
    exported = AuditLogResource().export()
    assert exported.dict[0]["user_action"] == "'@SUM(A1)"
    assert exported.dict[0]["actor"] == "owner"


def test_admin_export_page_is_served(client, owner):
    client.force_login(owner)
    assert client.get("/admin/subscribers/suppression/export/").status_code == 200
    assert client.get("/admin/subscribers/suppression/import/").status_code == 200
