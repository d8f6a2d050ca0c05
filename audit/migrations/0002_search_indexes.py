"""Indexes for the audit log's admin search (bench/admin.py): Django's search compares
UPPER(entity_id) for the exact id and UPPER(user_action) LIKE '%...%' for words, so the indexes are
on those expressions; the words take a trigram index (PostgreSQL only; SQLite scans, as before)."""

from django.db import migrations

from inboxerr.migration_ops import postgres_only

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS audit_entity_id_upper ON audit_auditlog (upper(entity_id::text))",
    "CREATE INDEX IF NOT EXISTS audit_user_action_upper_trgm ON audit_auditlog "
    "USING gin (upper(user_action::text) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS audit_user_action_upper_trgm",
    "DROP INDEX IF EXISTS audit_entity_id_upper",
]


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [postgres_only(FORWARD, BACKWARD)]
