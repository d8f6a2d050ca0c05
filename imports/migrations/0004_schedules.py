"""Scheduled sweepers: resume imports whose worker died, and remove expired upload files."""

from django.db import migrations
from django.utils import timezone

SCHEDULES = [
    ("imports.recover_stuck", "imports.tasks.recover_stuck_imports", 1),
    ("imports.sweep_files", "imports.tasks.sweep_import_files", 60),
]


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
    dependencies = [("imports", "0003_options_worker_token_row_errors"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(create, delete)]
