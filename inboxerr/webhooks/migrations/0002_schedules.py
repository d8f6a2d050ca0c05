"""Scheduled sweeper: send webhook deliveries whose retry is due (or whose worker died)."""

from django.db import migrations
from django.utils import timezone

SCHEDULES = [("webhooks.sweep_due", "inboxerr.webhooks.tasks.sweep_due_deliveries", 1)]


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1, "next_run": timezone.now()},
        )


def delete(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(create, delete)]
