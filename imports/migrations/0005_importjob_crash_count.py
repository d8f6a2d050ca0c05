from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("imports", "0004_schedules"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="crash_count",
            field=models.PositiveIntegerField(
                default=0, help_text="Runs that crashed their worker; past IMPORT_MAX_AUTO_RETRIES the job is failed."
            ),
        ),
    ]
