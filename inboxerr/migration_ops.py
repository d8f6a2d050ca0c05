"""Operations that migrations share: the recurring django-q2 tasks (created by data migrations)
and SQL that only PostgreSQL runs (its extensions and expression indexes)."""

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


def postgres_only(forward: list[str], backward: list[str]) -> migrations.RunPython:
    """A RunPython executing `forward` (or `backward` when unapplied) on PostgreSQL and nothing on
    SQLite, the embedded default, which scans where PostgreSQL has these indexes."""

    def run(statements: list[str]):
        def apply(apps, schema_editor):
            if schema_editor.connection.vendor != "postgresql":
                return
            for statement in statements:
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(run(forward), run(backward))
