"""The campaigns' minute tick: expired leases, scheduled starts, dispatchers kept going."""

from django.db import migrations

from inboxerr.migration_ops import every_minutes


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [every_minutes(("campaigns.tick", "campaigns.tasks.tick", 1))]
