"""Schedule the activity rollup the dashboard reads (every minute, from the first cluster start)."""

from django.db import migrations

from inboxerr.migration_ops import every_minutes


class Migration(migrations.Migration):
    dependencies = [("operations", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [every_minutes(("operations.rollup", "operations.tasks.rollup", 1))]
