"""One trigram index over every value a list page's search reads (email, phone, name, the JSON
field values): `subscribers.selectors.SEARCH_HAYSTACK` is this expression, and the planner uses
the index only while the two are spelled alike."""

from django.db import migrations

from inboxerr.migration_ops import postgres_only

FORWARD = [
    "CREATE INDEX IF NOT EXISTS sub_search_haystack_trgm ON subscribers_subscriber USING gin ("
    "(email || ' ' || phone || ' ' || name || ' ' || "
    "jsonb_path_query_array(standard_fields || custom_fields, 'strict $.*')::text) gin_trgm_ops)",
]
BACKWARD = ["DROP INDEX IF EXISTS sub_search_haystack_trgm"]


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0004_postgres_search_indexes_fixed")]
    operations = [postgres_only(FORWARD, BACKWARD)]
