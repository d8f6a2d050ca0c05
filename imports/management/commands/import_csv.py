import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from imports import pipeline, services
from imports.api.serializers import ImportJobSerializer
from inboxerr.actors import Actor
from inboxerr.errors import ServiceError
from subscribers.selectors import user_by_username


class Command(BaseCommand):
    help = (
        "Import a CSV file into a subscriber list. Queues the job for the workers, or with --sync "
        "runs it here with a progress bar. --json prints the final summary as one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--list", required=True, dest="list_name", metavar="NAME", help="List name (created on first use).")
        parser.add_argument("--owner", default=os.environ.get("INBOXERR_ADMIN_USER", "admin"), help="Username owning the list (default: INBOXERR_ADMIN_USER or admin).")
        parser.add_argument("--key-field", choices=["email", "phone"], help="Key of a new list (default email).")
        parser.add_argument("--mapping", help='JSON object of column -> field, e.g. \'{"E-mail": "email", "Tier": "custom:plan"}\'.')
        parser.add_argument("--no-update", action="store_true", help="Leave existing subscribers untouched.")
        parser.add_argument("--force", action="store_true", help="Import a file already imported into this list.")
        parser.add_argument("--sync", action="store_true", help="Run the import in this process instead of a worker.")
        parser.add_argument("--json", action="store_true", help="Print the final (or queued) job as one JSON object.")

    def handle(self, *args, file: str, list_name: str, owner: str, key_field: str | None, mapping: str | None,
               no_update: bool, force: bool, sync: bool, **options) -> None:
        as_json = options["json"]
        try:
            mapping_data = _load_mapping(mapping)
            user = user_by_username(owner)
            stored = services.store_local_file(Path(file))
            job = services.import_create(
                actor=Actor(user=user, source="command"), owner=user, list_name=list_name, stored=stored,
                key_field=key_field, mapping=mapping_data, update_existing=not no_update, force=force,
                enqueue=not sync,
            )
        except ServiceError as exc:
            raise CommandError(_naming_the_file(exc, file)) from None
        if sync:
            token = pipeline.import_claim(job_id=job.pk)
            if token is None:
                raise CommandError(f"Job {job.pk} was taken by a worker; follow it with GET /api/v1/imports/{job.pk}")
            size = max(job.size_bytes, 1)
            progress = None if as_json else lambda rows, offset: _bar(self.stderr._out, rows, offset, size)
            job = pipeline.import_run(job_id=job.pk, token=token, on_chunk=progress)
            if not as_json:
                self.stderr.write("")
        job.refresh_from_db()
        if as_json:
            self.stdout.write(_json_dumps(ImportJobSerializer(job).data))
        elif sync:
            self.stdout.write(
                f"{job.status}: {job.processed_rows:,} rows, {job.created:,} created, {job.updated:,} updated, "
                f"{job.duplicates:,} duplicates, {job.invalid:,} invalid ({job.stats.get('rows_per_second', 0):,} rows/s)"
            )
        else:
            self.stdout.write(f"Queued import {job.pk} into '{job.list_name}'")
        if job.status == "failed":
            raise CommandError(job.error_message or "The import failed")


def _naming_the_file(exc: ServiceError, file: str) -> str:
    """What is wrong with the file (its encoding, its format, its header) says which file: the
    services word it as the upload API does, for a field called `file`."""
    if exc.field != "file" or file in exc.message:
        return exc.message
    return f"{file}: {exc.message.removeprefix('file: ')}"


def _load_mapping(raw: str | None) -> dict | None:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ServiceError(f"--mapping is not valid JSON: {exc}") from None


def _bar(stream, rows: int, offset: int, size: int) -> None:
    done = min(1.0, offset / size)
    filled = int(done * 30)
    stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done:6.1%} {rows:,} rows")
    stream.flush()


def _json_dumps(data: dict) -> str:
    return json.dumps(data, default=str)
