"""Scheduled sweeper: send webhook deliveries whose retry is due (or whose worker died)."""

from django.db import migrations

from inboxerr.migration_ops import every_minutes


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [every_minutes(("webhooks.sweep_due", "inboxerr.webhooks.tasks.sweep_due_deliveries", 1))]
