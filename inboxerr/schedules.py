"""Recurring django-q2 tasks are created by data migrations; this builds their operation."""

from django.db import migrations
from django.utils import timezone


def every_minutes(*schedules: tuple[str, str, int]) -> migrations.RunPython:
    """A RunPython creating (name, dotted task path, every N minutes) schedules. next_run is now,
    so a freshly started cluster runs each at once instead of N minutes later."""

    def create(apps, schema_editor):
        Schedule = apps.get_model("django_q", "Schedule")
        for name, func, minutes in schedules:
            Schedule.objects.update_or_create(
                name=name,
                defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1,
                          "next_run": timezone.now()},
            )

    def delete(apps, schema_editor):
        apps.get_model("django_q", "Schedule").objects.filter(name__in=[s[0] for s in schedules]).delete()

    return migrations.RunPython(create, delete)
