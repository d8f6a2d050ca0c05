"""Scheduled sweepers: resume imports whose worker died, and remove expired upload files."""

from django.db import migrations

from inboxerr.migration_ops import every_minutes


class Migration(migrations.Migration):
    dependencies = [("imports", "0003_options_worker_token_row_errors"), ("django_q", "0018_task_success_index")]
    operations = [every_minutes(
        ("imports.recover_stuck", "imports.tasks.recover_stuck_imports", 1),
        ("imports.sweep_files", "imports.tasks.sweep_import_files", 60),
    )]
