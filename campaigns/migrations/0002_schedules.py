"""The campaigns' minute tick: expired leases, scheduled starts, dispatchers kept going."""

from django.db import migrations
from django.utils import timezone


def create(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="campaigns.tick",
        defaults={"func": "campaigns.tasks.tick", "schedule_type": "I", "minutes": 1, "repeats": -1, "next_run": timezone.now()},
    )


def delete(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="campaigns.tick").delete()


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(create, delete)]
