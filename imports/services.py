"""The life of an import job: created from an upload, a JSON payload or a file on disk; queued;
cancelled, retried, swept when stuck; cleared. The row work itself is in pipeline.py."""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from audit.services import audit_record
from imports.models import ACTIVE_IMPORT_STATUSES, STUCK, ImportJob, ImportSource, ImportStatus, import_status_label
from imports.parsing import (
    ColumnPlan, CsvFormat, CsvRowError, FileFormatError, detect_format, iter_records, plan_columns, read_header,
    validate_mapping,
)
from imports.rows import CsvRowCleaner
from imports.writers import seen_table
from inboxerr.actors import Actor
from inboxerr.crashes import crashed_reason
from inboxerr.errors import Conflict, InvalidInput
from inboxerr.storable import storable
from inboxerr.webhooks.events import WebhookEvent
from inboxerr.webhooks.services import event_emit
from subscribers.models import KeyField, SubscriberList
from subscribers.services import list_get_or_create

FINISHED_STATUSES = (
    ImportStatus.COMPLETED, ImportStatus.PARTIALLY_COMPLETED, ImportStatus.FAILED, ImportStatus.CANCELLED,
)


@dataclass(frozen=True)
class StoredFile:
    """An upload written to IMPORT_DIR, hashed on the way in."""

    path: Path
    filename: str
    sha256: str
    size: int
    encoding: str | None = None  # known when the upload handler checked it on the way in


def import_dir() -> Path:
    directory = Path(settings.IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def store_local_file(source: Path) -> StoredFile:
    """Copy a file from disk (the import_csv command) into IMPORT_DIR, hashing it on the way."""
    if not source.is_file():
        raise InvalidInput(f"file: {source} does not exist", field="file")
    size = source.stat().st_size
    if size > settings.IMPORT_MAX_BYTES:
        raise InvalidInput(f"file: {size:,} bytes is over the limit of {settings.IMPORT_MAX_BYTES:,}", field="file")
    target = import_dir() / f"{uuid.uuid4().hex}.upload"
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            while block := src.read(1024 * 1024):
                digest.update(block)
                dst.write(block)
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise InvalidInput(f"file: {source} cannot be read: {exc.strerror}", field="file") from None
    # A name that is not UTF-8 on disk arrives with its bytes as lone surrogates, which the
    # database cannot take: those bytes become U+FFFD in the name the job keeps.
    filename = source.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return StoredFile(target, storable(filename), digest.hexdigest(), size)


def discard_stored(stored: StoredFile) -> None:
    stored.path.unlink(missing_ok=True)


def import_check_file(*, stored: StoredFile, key_field: str, mapping: dict, keep_raw: list | tuple = ()) -> dict:
    """Everything that can be known about the file from its first rows, before a job exists:
    it is CSV, it has a header and at least one data row, and it has the list's key column.
    Returns the job's reading options; raises InvalidInput naming the problem."""
    fmt = _read_format(stored)
    header = read_header(stored.path, fmt)
    unknown = sorted(set(mapping) - set(header))
    if unknown:
        raise InvalidInput(f"mapping: no column named {', '.join(map(repr, unknown))} in the file", field="mapping")
    unknown = sorted(set(keep_raw) - set(header))
    if unknown:
        raise InvalidInput(f"keep_raw: no column named {', '.join(map(repr, unknown))} in the file", field="keep_raw")
    plan = plan_columns(header, mapping)
    if CsvRowCleaner(plan, key_field).missing_key_column():
        raise InvalidInput(
            f"file: no {key_field} column; found columns: {', '.join(header)[:500]} "
            f"(name one with mapping, e.g. {{\"{header[0]}\": \"{key_field}\"}})",
            field="file",
            extra={"missing_column": key_field},
        )
    _first_rows(stored, fmt, 1)
    return {
        "format": {"encoding": fmt.encoding, "delimiter": fmt.delimiter, "header_end": fmt.header_end},
        "header": header,  # a list: the order of columns (jsonb objects do not keep key order)
        "columns": plan.as_mapping(),
    }


def _read_format(stored: StoredFile) -> CsvFormat:
    try:
        return detect_format(stored.path, encoding=stored.encoding)
    except FileFormatError as exc:
        raise InvalidInput(f"file: {exc}", field="file") from None


def _first_rows(stored: StoredFile, fmt: CsvFormat, count: int) -> list[list[str]]:
    """Up to `count` data rows; a file with a header and nothing else is refused, as a job would
    end failed with nothing to do."""
    records = iter_records(stored.path, fmt, start=fmt.header_end, first_record=2)
    rows = [[] if isinstance(cells, CsvRowError) else cells for _, cells, _ in islice(records, count)]
    if not rows:
        raise InvalidInput("file: the file has a header but no data rows", field="file")
    return rows


@dataclass(frozen=True)
class ImportPreview:
    """What the admin shows before an import starts: how the file reads, where each column would
    go, the first rows, and whether the same file already went into the list."""

    format: CsvFormat
    header: list[str]
    plan: ColumnPlan
    rows: list[list[str]]
    key_column_missing: bool
    previous_job: ImportJob | None


def import_preview(*, stored: StoredFile, subscriber_list: SubscriberList, mapping: dict | None = None,
                   rows: int = 10) -> ImportPreview:
    """Read the head of an uploaded file for the admin's preview. A file that is not a readable
    CSV with data rows is refused with InvalidInput and removed, so nothing is left behind; a
    missing key column is only reported, as the operator may still map one."""
    try:
        fmt = _read_format(stored)
        header = read_header(stored.path, fmt)
        first = _first_rows(stored, fmt, rows)
    except InvalidInput:
        discard_stored(stored)
        raise
    plan = plan_columns(header, {k: v for k, v in (mapping or {}).items() if k in header})
    return ImportPreview(
        format=fmt, header=header, plan=plan, rows=first,
        key_column_missing=CsvRowCleaner(plan, subscriber_list.key_field).missing_key_column(),
        previous_job=_previous_import(subscriber_list, stored.sha256),
    )


def _previous_import(subscriber_list: SubscriberList, sha256: str) -> ImportJob | None:
    return ImportJob.objects.filter(list=subscriber_list, sha256=sha256).exclude(status=ImportStatus.CANCELLED).first()


@transaction.atomic
def import_create(
    *,
    actor: Actor,
    owner,
    list_name: str,
    stored: StoredFile,
    source: str = ImportSource.CSV,
    key_field: str | None = None,
    mapping: object = None,
    keep_raw: object = None,
    update_existing: bool = True,
    force: bool = False,
    enqueue: bool = True,
    keep_file_on_error: bool = False,
) -> ImportJob:
    """Create and queue an import of a stored file into a list (created on first use). Refuses
    the same file for the same list while a job for it exists, unless forced. A refused file is
    removed, unless `keep_file_on_error` (the admin's wizard, where the operator can change an
    option and start again without a second upload). `keep_raw` names columns whose invalid
    secondary value (a phone that is no number) is kept as written in a custom field
    "<field>_raw" rather than only reported."""
    try:
        if key_field and key_field not in KeyField.values:
            raise InvalidInput(f"key_field: must be one of {', '.join(KeyField.values)}", field="key_field")
        try:
            mapping = validate_mapping(mapping)
        except ValueError as exc:
            raise InvalidInput(f"mapping: {exc}", field="mapping") from None
        keep_raw = _validate_keep_raw(keep_raw)
        subscriber_list = list_get_or_create(actor=actor, owner=owner, name=list_name, key_field=key_field)
        existing = _previous_import(subscriber_list, stored.sha256)
        if existing and not force:
            raise Conflict(
                f"This file was already imported into '{subscriber_list.name}' "
                f"(job {existing.pk}, {import_status_label(existing.status).lower()}); "
                "pass force=true to import it again",
                field="file",
                extra={"import_id": str(existing.pk), "status": existing.status},
            )
        options: dict = {"key_field": subscriber_list.key_field, "mapping": mapping, "update_existing": update_existing}
        if keep_raw:
            options["keep_raw"] = keep_raw
        if source == ImportSource.CSV:
            options.update(import_check_file(stored=stored, key_field=subscriber_list.key_field, mapping=mapping,
                                             keep_raw=keep_raw))
    except Exception:
        if not keep_file_on_error:
            discard_stored(stored)
        raise
    job = ImportJob.objects.create(
        owner=subscriber_list.owner,
        list=subscriber_list,
        list_name=subscriber_list.name,
        source=source,
        filename=stored.filename[:255],
        file_path=str(stored.path),
        sha256=stored.sha256,
        size_bytes=stored.size,
        options=options,
    )
    audit_record(
        actor=actor,
        action="import",
        entity_type="import_job",
        entity_id=job.pk,
        owner_id=job.owner_id,
        user_action=f"Queued import of '{job.filename}' ({stored.size:,} bytes) into '{job.list_name}'",
        after={"status": job.status, "sha256": job.sha256, "source": source},
    )
    if enqueue:
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _validate_keep_raw(keep_raw: object) -> list[str]:
    if keep_raw in (None, "", []):
        return []
    if not isinstance(keep_raw, list) or not all(isinstance(c, str) for c in keep_raw):
        raise InvalidInput("keep_raw: must be a list of column names", field="keep_raw")
    try:
        validate_mapping({column: "keep" for column in keep_raw})  # names kept with the job: storable
    except ValueError as exc:
        raise InvalidInput(f"keep_raw: {exc}", field="keep_raw") from None
    return list(dict.fromkeys(keep_raw))


def import_create_from_records(*, actor: Actor, owner, list_name: str, records: list, filename: str = "background-upload.jsonl") -> ImportJob:
    """Seed 000's background upload: the records go to disk as JSON Lines and take the same
    pipeline as a file."""
    if not isinstance(records, list) or not records:
        raise InvalidInput("subscribers: must be a non-empty list of records", field="subscribers")
    target = import_dir() / f"{uuid.uuid4().hex}.jsonl"
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as handle:
        for record in records:
            try:
                line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            except UnicodeEncodeError:
                # A lone surrogate has no UTF-8 form: written as a \u escape, the record reaches
                # the job as it was, and the job reports it as an invalid row naming the field.
                line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
            digest.update(line)
            size += len(line)
            handle.write(line)
    stored = StoredFile(target, filename, digest.hexdigest(), size)
    return import_create(actor=actor, owner=owner, list_name=list_name, stored=stored, source=ImportSource.JSON)


def _enqueue(job_id) -> None:
    async_task("imports.tasks.run_import", str(job_id), task_name=f"import-{job_id}")


@transaction.atomic
def import_cancel(*, actor: Actor, job: ImportJob) -> ImportJob:
    """Stop a job: the worker's next chunk commit finds it cancelled and rolls back, so what is
    committed is exactly the chunks before the cancel."""
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in ACTIVE_IMPORT_STATUSES:
        raise Conflict(f"Job {job.pk} is {import_status_label(job.status).lower()}; "
                       "only pending or processing jobs can be cancelled", field="status")
    before = job.status
    job.status = ImportStatus.CANCELLED
    job.finished_at = timezone.now()
    job.error_message = "Cancelled"
    path, job.file_path = job.file_path, ""
    job.save()
    audit_record(
        actor=actor, action="update", entity_type="import_job", entity_id=job.pk, owner_id=job.owner_id,
        user_action=f"Cancelled import into '{job.list_name}'", before={"status": before}, after={"status": job.status},
    )
    transaction.on_commit(lambda: _cleanup_job_storage(job.pk, path))
    return job


def _cleanup_job_storage(job_id, path: str) -> None:
    if path:
        Path(path).unlink(missing_ok=True)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {seen_table(uuid.UUID(str(job_id)))}")


@transaction.atomic
def import_force_retry(*, actor: Actor, job: ImportJob) -> ImportJob:
    """Seed 000 force-retry: a failed (or stuck) job goes back to pending and resumes from its
    checkpoint; its counters carry on from there."""
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status != ImportStatus.FAILED and job_display_status(job) != STUCK:
        raise Conflict(f"Job {job.pk} is {import_status_label(job.status).lower()}; "
                       "only failed or stuck jobs can be retried", field="status")
    if not job.file_path or not Path(job.file_path).exists():
        raise Conflict(
            f"Job {job.pk} cannot be retried: its file is no longer kept (retention {settings.IMPORT_RETENTION_HOURS} h); "
            "upload it again",
            field="file",
        )
    before = job.status
    job.status = ImportStatus.PENDING
    job.retry_count += 1
    job.worker_token = ""
    job.finished_at = None
    job.error_message = ""
    job.save()
    audit_record(
        actor=actor, action="update", entity_type="import_job", entity_id=job.pk, owner_id=job.owner_id,
        user_action=f"Retry #{job.retry_count} of import into '{job.list_name}' from row {job.checkpoint.get('row', 1)}",
        before={"status": before}, after={"status": job.status, "retry_count": job.retry_count},
    )
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def job_display_status(job: ImportJob, now=None) -> str:
    """Seed 000 determine_job_status: the stored status, or `stuck` for an active job whose
    worker has gone quiet (no heartbeat within IMPORT_STUCK_AFTER_SECONDS; pending for an hour)."""
    now = now or timezone.now()
    if job.status == ImportStatus.PROCESSING:
        beat = job.heartbeat_at or job.started_at or job.created_at
        if (now - beat).total_seconds() > settings.IMPORT_STUCK_AFTER_SECONDS:
            return STUCK
    if job.status == ImportStatus.PENDING and (now - job.created_at) > timedelta(hours=1):
        return STUCK
    return job.status


def stuck_jobs(queryset: QuerySet[ImportJob], now=None) -> QuerySet[ImportJob]:
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS)
    return queryset.filter(
        Q(status=ImportStatus.PROCESSING, heartbeat_at__lt=stale)
        | Q(status=ImportStatus.PROCESSING, heartbeat_at__isnull=True, created_at__lt=stale)
        | Q(status=ImportStatus.PENDING, created_at__lt=now - timedelta(hours=1))
    )


@transaction.atomic
def imports_cleanup_stuck(*, actor: Actor, jobs: QuerySet[ImportJob]) -> dict:
    """Seed 000 cleanup-stuck: mark stuck jobs failed (their files stay, so they can be retried)."""
    now = timezone.now()
    stuck = list(stuck_jobs(jobs, now).select_for_update())
    for job in stuck:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.FAILED, finished_at=now, worker_token="",
            error_message=f"Marked failed by stuck-job cleanup (was {job.status}, last heartbeat {job.heartbeat_at})",
        )
    if stuck:
        audit_record(
            actor=actor, action="update", entity_type="import_job",
            owner_id=stuck[0].owner_id if len({j.owner_id for j in stuck}) == 1 else None,
            user_action=f"Cleaned {len(stuck)} stuck import job(s)",
            metadata={"job_ids": [str(j.pk) for j in stuck]},
        )
    return {
        "message": f"Cleaned {len(stuck)} stuck jobs",
        "cleaned": len(stuck),
        "timestamp": now.isoformat(),
        "stuck_jobs": [{"job_id": str(j.pk), "list_name": j.list_name, "status_was": j.status} for j in stuck],
    }


def imports_recover_stuck(*, actor: Actor | None = None, jobs: QuerySet[ImportJob] | None = None) -> list[str]:
    """Scheduled sweeper: a processing job whose worker went silent crashed it (killed, out of
    memory, restarted). It goes back to the queue and resumes from its checkpoint, or, once it
    has crashed more than IMPORT_MAX_AUTO_RETRIES times, is failed with the reason. `jobs`
    narrows it to the caller's own jobs when a user asks for it."""
    requeued: list[str] = []
    jobs = ImportJob.objects.all() if jobs is None else jobs
    with transaction.atomic():
        for job in stuck_jobs(jobs.filter(status=ImportStatus.PROCESSING)).select_for_update(skip_locked=True):
            job = import_crashed(job=job, error=worker_lost_error(job), actor=actor)
            if job.status == ImportStatus.PENDING:
                requeued.append(str(job.pk))
    return requeued


def worker_lost_error(job: ImportJob) -> str:
    """The last error of a job whose worker died without a word: where it was and when."""
    where = f" after row {job.checkpoint['row']:,}" if (job.checkpoint or {}).get("row") else ""
    beat = job.heartbeat_at or job.started_at or job.created_at
    return (f"the worker stopped{where} without finishing (killed, out of memory or restarted); "
            f"last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC")


def import_crashed(*, job: ImportJob, error: str, actor: Actor | None = None, requeue: bool = True) -> ImportJob:
    """Count one crash of a job's run (see inboxerr/crashes.py), the caller holding the job's row
    lock. With retries left the job goes back to pending and resumes from its checkpoint: queued
    again, unless `requeue` is off because the calling worker takes it over itself. Past
    IMPORT_MAX_AUTO_RETRIES it is failed with the reason and keeps its file for a manual retry,
    which gives it one more run (its crashes still count)."""
    now = timezone.now()
    job.crash_count += 1
    job.worker_token = ""
    if job.crash_count > settings.IMPORT_MAX_AUTO_RETRIES:
        job.status, job.finished_at, job.heartbeat_at = ImportStatus.FAILED, now, now
        job.error_message = crashed_reason(crashes=job.crash_count, doing="processing this import", last_error=error)
        verb = f"failed: its worker crashed {job.crash_count} times"
    else:
        job.status, job.retry_count = ImportStatus.PENDING, job.retry_count + 1
        job.error_message = (f"Worker crashed ({job.crash_count} of {settings.IMPORT_MAX_AUTO_RETRIES + 1} "
                             f"crashes allowed); resuming from the checkpoint. Last error: {error}")
        verb = f"requeued after its worker crashed (retry {job.retry_count})"
    job.save()
    audit_record(
        actor=actor or Actor.system(), action="update", entity_type="import_job", entity_id=job.pk,
        owner_id=job.owner_id, user_action=f"Import into '{job.list_name}' {verb}",
        after={"status": job.status, "crash_count": job.crash_count, "error": error},
    )
    if job.status == ImportStatus.FAILED:
        import_event_emit(job=job)
    elif requeue:
        transaction.on_commit(lambda pk=job.pk: _enqueue(pk))
    return job


def import_event_emit(*, job: ImportJob) -> None:
    """The webhook event of a job that ended (import.completed or import.failed), written in the
    caller's transaction."""
    event_emit(
        event=WebhookEvent.IMPORT_FAILED if job.status == ImportStatus.FAILED else WebhookEvent.IMPORT_COMPLETED,
        owner_id=job.owner_id,
        payload={"import_id": str(job.pk), "list_name": job.list_name, "status": job.status,
                 "processed_rows": job.processed_rows, "created": job.created, "updated": job.updated,
                 "duplicates": job.duplicates, "invalid": job.invalid, "error": job.error_message},
    )


def import_files_sweep(*, now=None) -> int:
    """Scheduled: remove files of failed jobs kept longer than IMPORT_RETENTION_HOURS, and files
    in IMPORT_DIR that no job refers to (an upload whose request died)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.IMPORT_RETENTION_HOURS)
    removed = 0
    expired = ImportJob.objects.filter(status=ImportStatus.FAILED, finished_at__lt=cutoff).exclude(file_path="")
    for job in expired:
        _cleanup_job_storage(job.pk, job.file_path)  # a retry is no longer possible: keys go too
        ImportJob.objects.filter(pk=job.pk).update(file_path="")
        removed += 1
    referenced = set(ImportJob.objects.exclude(file_path="").values_list("file_path", flat=True))
    for path in import_dir().iterdir():
        if str(path) not in referenced and path.stat().st_mtime < cutoff.timestamp():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@transaction.atomic
def jobs_clear(*, actor: Actor, jobs: QuerySet[ImportJob]) -> dict:
    """Seed 000 clear-all: delete the records of finished jobs (their subscribers stay)."""
    finished = jobs.filter(status__in=FINISHED_STATUSES)
    cleared = list(finished.values_list("pk", "file_path", "owner_id"))
    deleted = finished.delete()[1].get(ImportJob._meta.label, 0)
    owners = {owner_id for _, _, owner_id in cleared}
    audit_record(
        actor=actor, action="delete", entity_type="import_job", user_action=f"Cleared {deleted} finished job record(s)",
        owner_id=owners.pop() if len(owners) == 1 else None,
        metadata={"job_ids": [str(pk) for pk, _, _ in cleared][:1000], "count": deleted},
    )
    transaction.on_commit(lambda: [_cleanup_job_storage(pk, path) for pk, path, _ in cleared])
    return {"message": f"Cleared {deleted} old jobs", "deleted_count": deleted}


def upload_queue_status(*, jobs: QuerySet[ImportJob]) -> dict:
    """Seed 000 upload-queue/status: how many jobs wait, run and are done."""
    counts = {row["status"]: row["n"] for row in jobs.values("status").annotate(n=Count("pk"))}
    return {
        "queued": counts.get(ImportStatus.PENDING, 0),
        "processing": counts.get(ImportStatus.PROCESSING, 0),
        "completed": counts.get(ImportStatus.COMPLETED, 0) + counts.get(ImportStatus.PARTIALLY_COMPLETED, 0),
        "failed": counts.get(ImportStatus.FAILED, 0),
        "cancelled": counts.get(ImportStatus.CANCELLED, 0),
        "stuck": stuck_jobs(jobs).count(),
    }


def imports_retry_failed(*, actor: Actor, jobs: QuerySet[ImportJob]) -> dict:
    """Seed 000 upload-queue/retry and recovery/manual-retry: retry every failed job that still
    has its file, and hand stuck ones back to the queue."""
    requeued = imports_recover_stuck(actor=actor, jobs=jobs)
    retried, skipped = [], []
    for job in jobs.filter(status=ImportStatus.FAILED).order_by("created_at")[:100]:
        try:
            import_force_retry(actor=actor, job=job)
            retried.append(str(job.pk))
        except Conflict as exc:
            skipped.append({"job_id": str(job.pk), "reason": exc.message})
    return {
        "success": True,
        "message": f"Retried {len(retried)} failed job(s), requeued {len(requeued)} stuck job(s)",
        "retried": retried,
        "requeued": requeued,
        "skipped": skipped,
        "timestamp": timezone.now().isoformat(),
    }

