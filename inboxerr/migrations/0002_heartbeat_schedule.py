"""Schedule the worker heartbeat that /health reads (beats at once on a fresh cluster)."""

from django.db import migrations

from inboxerr.migration_ops import every_minutes


class Migration(migrations.Migration):
    dependencies = [("inboxerr", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [every_minutes(("inboxerr.heartbeat", "inboxerr.tasks.heartbeat", 1))]
