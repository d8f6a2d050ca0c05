"""manage.py purge_audit --older-than DAYS."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditLog


def row_aged(days: int) -> AuditLog:
    row = AuditLog.objects.create(action="update", entity_type="subscriber", user_action=f"{days} days old")
    AuditLog.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days))
    return row


def test_purge_deletes_only_rows_older_than_the_cutoff_and_audits_itself(db):
    old, older = row_aged(40), row_aged(400)
    recent = row_aged(5)
    out = io.StringIO()

    call_command("purge_audit", "--older-than", "30", stdout=out)

    assert out.getvalue().strip() == "Deleted 2 audit rows older than 30 days"
    assert not AuditLog.objects.filter(pk__in=[old.pk, older.pk]).exists()
    assert AuditLog.objects.filter(pk=recent.pk).exists()
    purge = AuditLog.objects.get(entity_type="audit_log")
    assert (purge.action, purge.actor, purge.metadata["deleted"], purge.metadata["source"]) == (
        "delete", None, 2, "command",
    )


def test_purge_with_nothing_old_enough_deletes_nothing(db):
    recent = row_aged(1)
    out = io.StringIO()

    call_command("purge_audit", "--older-than", "7", stdout=out)

    assert out.getvalue().strip() == "Deleted 0 audit rows older than 7 days"
    assert AuditLog.objects.filter(pk=recent.pk).exists()


@pytest.mark.parametrize("days", ["0", "-3"])
def test_purge_refuses_an_age_under_one_day(db, days):
    row = row_aged(100)

    with pytest.raises(CommandError, match="--older-than must be at least 1 day"):
        call_command("purge_audit", "--older-than", days, stdout=io.StringIO())

    assert list(AuditLog.objects.values_list("pk", flat=True)) == [row.pk]


def test_purge_refuses_an_age_beyond_the_calendar(db):
    row = row_aged(100)

    with pytest.raises(CommandError, match="^--older-than must be at most 36,500 days$"):
        call_command("purge_audit", "--older-than", "99999999999", stdout=io.StringIO())

    assert list(AuditLog.objects.values_list("pk", flat=True)) == [row.pk]


def test_purge_requires_the_age(db):
    with pytest.raises(CommandError, match="--older-than"):
        call_command("purge_audit", stdout=io.StringIO())
