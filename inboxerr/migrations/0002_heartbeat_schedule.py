"""Schedule the worker heartbeat that /health reads. next_run is 'now', so a freshly started
qcluster beats at once instead of a minute later."""

from django.db import migrations
from django.utils import timezone


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="inboxerr.heartbeat",
        defaults={
            "func": "inboxerr.tasks.heartbeat",
            "schedule_type": "I",  # MINUTES
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="inboxerr.heartbeat").delete()


class Migration(migrations.Migration):
    dependencies = [("inboxerr", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(create_schedule, delete_schedule)]
