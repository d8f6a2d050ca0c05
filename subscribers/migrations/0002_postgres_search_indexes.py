"""Search indexes that only PostgreSQL has: a pattern index for exact and prefix email lookups
(email is stored lower-cased) and trigram indexes for free-text search on email and name.
SQLite, the embedded default, gets none of these and scans instead."""

from django.db import migrations

from inboxerr.migration_ops import postgres_only

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS sub_email_pattern ON subscribers_subscriber (email varchar_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS sub_email_trgm ON subscribers_subscriber USING gin (email gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS sub_name_trgm ON subscribers_subscriber USING gin (name gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS sub_name_trgm",
    "DROP INDEX IF EXISTS sub_email_trgm",
    "DROP INDEX IF EXISTS sub_email_pattern",
]


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0001_initial")]
    operations = [postgres_only(FORWARD, BACKWARD)]
