"""The batch publisher's name in the console, and the email and sms rate-limit rows present from
the start so the Rate limits page shows what there is to set. The rows are created disabled:
"disabled" means no limit, which is how every installation has sent so far; an operator turns a
limit on (and adjusts the suggested rate) from the admin."""

from django.db import migrations

DEFAULTS = {"email": {"rate": 10.0, "burst": 50}, "sms": {"rate": 1.0, "burst": 10}}


def add_rate_limit_rows(apps, schema_editor) -> None:
    RateLimit = apps.get_model("campaigns", "RateLimit")
    for name, values in DEFAULTS.items():
        RateLimit.objects.get_or_create(name=name, defaults={**values, "enabled": False})


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0006_message_claim_indexes")]

    operations = [
        migrations.AlterModelOptions(
            name="outboxswitch",
            options={"verbose_name": "batch publisher", "verbose_name_plural": "batch publisher"},
        ),
        # Leaves existing rows alone, and removes nothing on the way back.
        migrations.RunPython(add_rate_limit_rows, migrations.RunPython.noop),
    ]
