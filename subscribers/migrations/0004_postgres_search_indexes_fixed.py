"""Search indexes that match the queries (see bench/RESULTS.md): Django's icontains compares
UPPER(name), so the trigram index is on UPPER(name); phone gets a pattern index so prefix search
on E.164 numbers is an index range scan (the database collation is not C)."""

from django.db import migrations

from inboxerr.migration_ops import postgres_only

FORWARD = [
    "DROP INDEX IF EXISTS sub_name_trgm",
    "CREATE INDEX IF NOT EXISTS sub_name_upper_trgm ON subscribers_subscriber USING gin (upper(name::text) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS sub_phone_pattern ON subscribers_subscriber (phone varchar_pattern_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS sub_phone_pattern",
    "DROP INDEX IF EXISTS sub_name_upper_trgm",
    "CREATE INDEX IF NOT EXISTS sub_name_trgm ON subscribers_subscriber USING gin (name gin_trgm_ops)",
]


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0003_drop_plain_phone_index")]
    operations = [postgres_only(FORWARD, BACKWARD)]
