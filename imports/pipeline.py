"""Running one import job: read the source from its checkpoint, clean rows, and write them in
chunks. Each chunk commits its subscribers, row errors, list counter, job counters, heartbeat and
checkpoint in one transaction, so a job that dies resumes exactly where its last chunk ended and
the final counts equal those of an uninterrupted run."""

import json
import logging
import queue
import threading
import time
import uuid
from datetime import timedelta
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.services import audit_record
from imports import services
from imports.models import ImportJob, ImportRowError, ImportSource, ImportStatus, import_status_label
from imports.parsing import CsvFormat, CsvRowError, FileFormatError, iter_records, plan_columns, read_header
from imports.rows import CleanRow, CsvRowCleaner, JsonRowCleaner, RowError
from imports.writers import ChunkCounts, writer_for
from inboxerr.actors import Actor
from inboxerr.crashes import error_summary
from inboxerr.metrics import counter_add
from inboxerr.storable import storable
from subscribers.models import SubscriberList

logger = logging.getLogger("inboxerr.imports")


class JobLost(Exception):
    """The job was cancelled, or handed to another worker, while this one was running it."""


def import_claim(*, job_id) -> str | None:
    """Take a pending job (or one whose worker went silent) for this worker. Returns the worker
    token, or None when the job is not there to take (done, cancelled, or alive elsewhere)."""
    token = uuid.uuid4().hex
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS)
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update()
            .filter(Q(status=ImportStatus.PENDING) | Q(status=ImportStatus.PROCESSING, heartbeat_at__lt=stale), pk=job_id)
            .first()
        )
        if job is None:
            return None
        if job.status == ImportStatus.PROCESSING:
            # Its worker went silent: a crash, counted as the sweeper counts it, so a job that
            # kills every worker cannot be taken over forever either.
            job = services.import_crashed(job=job, error=services.worker_lost_error(job), requeue=False)
            if job.status != ImportStatus.PENDING:
                return None
        ImportJob.objects.filter(pk=job_id).update(status=ImportStatus.PROCESSING, worker_token=token,
                                                   heartbeat_at=now, updated_at=now, started_at=job.started_at or now)
        resuming = f" (resuming after row {job.checkpoint['row']})" if job.checkpoint.get("row") else ""
        audit_record(
            actor=Actor.system(),
            action="update",
            entity_type="import_job",
            entity_id=job.pk,
            owner_id=job.owner_id,
            user_action=f"Import into '{job.list_name}' started{resuming}",
            after={"status": ImportStatus.PROCESSING},
        )
    return token


def _records(job: ImportJob) -> Iterator[tuple[int, object, int]]:
    path = Path(job.file_path)
    checkpoint = job.checkpoint or {}
    if job.source == ImportSource.JSON:
        yield from _json_records(path, checkpoint.get("offset", 0), checkpoint.get("row", 0) + 1)
        return
    fmt = CsvFormat(**job.options["format"])
    yield from iter_records(
        path, fmt, start=checkpoint.get("offset", fmt.header_end), first_record=checkpoint.get("row", 1) + 1
    )


def _json_records(path: Path, offset: int, first: int) -> Iterator[tuple[int, object, int]]:
    """JSON Lines written by the background-upload endpoint: one record per line, numbered from 1."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        number = first
        for raw in handle:
            offset += len(raw)
            try:
                record = json.loads(raw)
            except ValueError as exc:
                record = CsvRowError(f"invalid JSON: {exc}")
            yield number, record, offset
            number += 1


def _cleaner(job: ImportJob, key_field: str) -> CsvRowCleaner | JsonRowCleaner:
    if job.source == ImportSource.JSON:
        return JsonRowCleaner(key_field)
    fmt = CsvFormat(**job.options["format"])
    plan = plan_columns(read_header(Path(job.file_path), fmt), job.options.get("mapping"))
    return CsvRowCleaner(plan, key_field, job.options.get("keep_raw") or ())


def import_run(*, job_id, token: str, on_chunk: Callable[[int, int], None] | None = None) -> ImportJob:
    """Run a claimed job to its end (or until it is cancelled or taken over). `on_chunk` hears
    (rows read so far in this run, byte offset) after each committed chunk."""
    job = ImportJob.objects.select_related("list").get(pk=job_id)
    if job.list is None:
        return _finish(job, token, ImportStatus.FAILED, error="The list was deleted")
    if not job.file_path or not Path(job.file_path).exists():
        return _finish(job, token, ImportStatus.FAILED, error="The uploaded file is no longer available")
    writer = writer_for(
        job_id=job.pk,
        list_id=job.list_id,
        owner_id=job.list.owner_id,
        update_existing=job.options.get("update_existing", True),
    )
    try:
        cleaner = _cleaner(job, job.list.key_field)
        started = time.monotonic()
        room = max(0, settings.IMPORT_MAX_STORED_ERRORS) - job.invalid - job.warnings  # a resumed job has lines
        chunks = _chunks(_records(job), cleaner, settings.IMPORT_CHUNK_ROWS, writer.pack_row, writer.pack, room)
        _write_behind(job, token, writer, chunks, on_chunk)
        job.refresh_from_db()
        final = _final_status(job)
        job = _finish(job, token, final, elapsed=time.monotonic() - started)
    except JobLost:
        logger.info("Import %s stopped: cancelled or taken over by another worker", job_id)
        return ImportJob.objects.get(pk=job_id)
    except (FileFormatError, OSError, ValueError) as exc:
        return _finish(job, token, ImportStatus.FAILED, error=str(exc))
    except Exception as exc:
        return _crashed(job, token, exc)
    writer.drop()
    return job


def _crashed(job: ImportJob, token: str, exc: Exception) -> ImportJob:
    """A run that raised where nothing expected it (a database error, a bug): one crash of the
    job (services.import_crashed), recorded at once rather than when the heartbeat goes stale.
    The table of keys written stays, so the resumed run counts nothing twice."""
    logger.exception("Import %s crashed", job.pk)
    # The error may have been the connection itself: a fresh one records the crash. If even
    # that fails, the exception reaches django-q and the sweeper counts the crash later.
    connection.close_if_unusable_or_obsolete()
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.worker_token != token or job.status != ImportStatus.PROCESSING:
            return job  # cancelled or taken over meanwhile: not this run's to count
        return services.import_crashed(job=job, error=error_summary(exc))


def _write_behind(job: ImportJob, token: str, writer, chunks: Iterator["_Chunk"], on_chunk) -> None:
    """Parse in this thread while a second thread (with its own database connection) commits the
    previous chunk: Python's row cleaning and PostgreSQL's upsert overlap instead of taking
    turns, which nearly halves an import's wall time on two cores. One chunk waits at most, so a
    worker holds three (being read, waiting, being written) whatever the size of the file."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def commit_chunks() -> None:
        rows = 0
        try:
            writer.prepare()
            while (chunk := handoff.get()) is not None:
                if failure:
                    continue  # keep draining so the parser never blocks on a full queue
                try:
                    _commit_chunk(job, token, writer, chunk)
                except BaseException as exc:  # re-raised in the parsing thread below
                    failure.append(exc)
                    continue
                rows += len(chunk)
                if on_chunk:
                    on_chunk(rows, chunk.offset)
        except BaseException as exc:
            failure.append(exc)
            while handoff.get() is not None:
                pass
        finally:
            connections.close_all()

    thread = threading.Thread(target=commit_chunks, name=f"import-writer-{job.pk}", daemon=True)
    thread.start()
    try:
        for chunk in chunks:
            if failure:
                break
            handoff.put(chunk)
    finally:
        handoff.put(None)
        thread.join()
    if failure:
        raise failure[0]


class _Chunk:
    __slots__ = ("rows", "kept", "invalid", "warned", "errors", "warnings", "in_chunk_duplicates", "last_row", "offset")

    def __init__(self) -> None:
        self.rows: list = []  # CleanRows, or what the writer packed them into (writer.pack_row)
        self.kept = 0
        self.invalid = 0  # every invalid row and every warning is counted...
        self.warned = 0
        self.errors: list[RowError] = []  # ...but report lines are kept only while the report has room
        self.warnings: list[RowError] = []  # secondary fields left out of rows that were kept
        self.in_chunk_duplicates = 0
        self.last_row = 0
        self.offset = 0

    def __len__(self) -> int:
        return self.kept + self.invalid + self.in_chunk_duplicates


# A chunk is full at IMPORT_CHUNK_ROWS rows or at this many characters of packed rows and kept
# report lines, whichever comes first: a worker holds three chunks, so wide rows (many columns)
# and rows kept for the report make smaller chunks rather than a bigger worker.
CHUNK_MAX_CHARS = 1_000_000
# Report lines kept past the room the report had when the run started: a row may bring an
# error and a few warnings, and the writer picks the first lines by row (_store_report_lines).
_REPORT_MARGIN = 8


def _chunks(records, cleaner, size: int, pack_row=None, pack=None, report_room: int | None = None) -> Iterator[_Chunk]:
    """Chunks of `size` records. With `pack_row` and `pack` (the writer's), each kept row is
    packed as soon as it is clean and the chunk's rows into one object when it is full: a
    queued chunk then holds a fraction of the memory of its rows as tuples of strings. Past
    `report_room` report lines, errors and warnings are counted but not kept (never stored)."""
    chunk, keys, count, chars, listed = _Chunk(), set(), 0, 0, 0
    clean, rows, errors, warnings = cleaner.clean, chunk.rows, chunk.errors, chunk.warnings
    room = (report_room if report_room is not None else 1 << 62) + _REPORT_MARGIN
    for number, cells, offset in records:
        result = clean(number, cells, warnings)
        if len(warnings) != listed:
            chunk.warned += len(warnings) - listed
            if room > 0:
                room -= len(warnings) - listed
                listed = len(warnings)
                chars += 100 + sum(map(len, cells))
            else:
                del warnings[listed:]
        if type(result) is RowError:
            chunk.invalid += 1
            if room > 0:
                errors.append(result)
                room -= 1
                chars += 100 + sum(map(len, result._cells))  # a kept line holds the row's cells
        elif result.key in keys:
            chunk.in_chunk_duplicates += 1  # first occurrence wins, as in seed 000
        else:
            keys.add(result.key)
            if pack_row:
                line = pack_row(result)
                chars += len(line)
                rows.append(line)
            else:
                rows.append(result)
        count += 1
        if count >= size or chars >= CHUNK_MAX_CHARS:
            chunk.last_row, chunk.offset = number, offset
            yield _packed(chunk, pack)
            chunk, keys, count, chars, listed = _Chunk(), set(), 0, 0, 0
            rows, errors, warnings = chunk.rows, chunk.errors, chunk.warnings
    if count:
        chunk.last_row, chunk.offset = number, offset
        yield _packed(chunk, pack)


def _packed(chunk: _Chunk, pack) -> _Chunk:
    chunk.kept = len(chunk.rows)
    if pack:
        chunk.rows = pack(chunk.rows)
    return chunk


def _commit_chunk(job: ImportJob, token: str, writer, chunk: _Chunk) -> None:
    with transaction.atomic():
        # One chunk at a time per list: two imports into the same list take turns chunk by chunk
        # (no deadlock on overlapping keys); imports into different lists run side by side.
        list(SubscriberList.objects.select_for_update().filter(pk=job.list_id).values_list("pk"))
        # Still ours? (Checked before the writer touches the job's key table, which a cancel drops.)
        held = (
            ImportJob.objects.select_for_update()
            .filter(pk=job.pk, worker_token=token, status=ImportStatus.PROCESSING)
            .values_list("invalid", "warnings")
            .first()
        )
        if held is None:
            raise JobLost
        counts: ChunkCounts = writer.write(chunk.rows, chunk.kept)
        _store_report_lines(job.pk, chunk, already=sum(held))
        if counts.created:
            SubscriberList.objects.filter(pk=job.list_id).update(subscriber_count=F("subscriber_count") + counts.created)
        size = max(job.size_bytes, 1)
        updated = (
            ImportJob.objects.filter(pk=job.pk, worker_token=token, status=ImportStatus.PROCESSING)
            .update(
                processed_rows=F("processed_rows") + len(chunk),
                created=F("created") + counts.created,
                updated=F("updated") + counts.updated,
                duplicates=F("duplicates") + counts.duplicates + chunk.in_chunk_duplicates,
                invalid=F("invalid") + chunk.invalid,
                warnings=F("warnings") + chunk.warned,
                stats=_stats_update(job, counts),
                progress=min(99.9, round(100.0 * chunk.offset / size, 1)),
                checkpoint={"offset": chunk.offset, "row": chunk.last_row},
                heartbeat_at=timezone.now(),
                updated_at=timezone.now(),
            )
        )
        if not updated:
            raise JobLost  # rolls this chunk back: the job is not ours any more
        counter_add("import_rows_processed", len(chunk))
    job.refresh_from_db(fields=["stats"])


def _store_report_lines(job_id, chunk: _Chunk, *, already: int) -> None:
    """Write the chunk's errors and warnings in row order, in one COPY (one multi-row INSERT
    elsewhere), up to IMPORT_MAX_STORED_ERRORS lines per job: a file where half the rows are bad
    costs no more than a clean one. Every line up to the cap is stored, so `already` (the job's
    count before this chunk) tells how much room is left."""
    room = max(0, settings.IMPORT_MAX_STORED_ERRORS) - already
    if room <= 0 or not (chunk.errors or chunk.warnings):
        return
    lines = sorted(chunk.errors + chunk.warnings, key=lambda line: line.row)[:room]
    if connection.vendor == "postgresql":
        table = ImportRowError._meta.db_table
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f'COPY {table} (job_id, "row", kind, "column", reason, "values") FROM STDIN') as copy:
                for line in lines:
                    copy.write_row((job_id, line.row, line.kind, line.column, line.reason,
                                    json.dumps(line.values, ensure_ascii=False)))
        return
    ImportRowError.objects.bulk_create(
        [ImportRowError(job_id=job_id, row=e.row, kind=e.kind, column=e.column, reason=e.reason, values=e.values)
         for e in lines],
        batch_size=len(lines),
    )


def _stats_update(job: ImportJob, counts: ChunkCounts) -> dict:
    stats = dict(job.stats or {})
    stats["unchanged"] = stats.get("unchanged", 0) + counts.unchanged
    stats["chunks"] = stats.get("chunks", 0) + 1
    return stats


def _final_status(job: ImportJob) -> str:
    valid = job.processed_rows - job.invalid
    if job.invalid and not valid:
        return ImportStatus.FAILED
    if job.invalid:
        return ImportStatus.PARTIALLY_COMPLETED
    return ImportStatus.COMPLETED


def _finish(job: ImportJob, token: str, status: str, *, error: str = "", elapsed: float | None = None) -> ImportJob:
    now = timezone.now()
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.worker_token != token or job.status != ImportStatus.PROCESSING:
            return job  # cancelled or taken over meanwhile: whoever holds it now finishes it
        stats = dict(job.stats or {})
        if elapsed:
            stats["last_run_seconds"] = round(elapsed, 2)
        if job.started_at:
            duration = (now - job.started_at).total_seconds()
            stats["duration_seconds"] = round(duration, 2)
            stats["rows_per_second"] = round(job.processed_rows / duration) if duration > 0 else job.processed_rows
        issues = job.invalid + job.warnings
        if issues:
            # The report keeps the first lines only; the counts above are complete.
            stats["report_lines_stored"] = min(issues, max(0, settings.IMPORT_MAX_STORED_ERRORS))
            stats["report_truncated"] = issues > stats["report_lines_stored"]
        if job.processed_rows:
            stats["duplicate_percentage"] = round(100.0 * job.duplicates / job.processed_rows, 2)
            stats["success_rate"] = round(100.0 * (job.processed_rows - job.invalid) / job.processed_rows, 2)
        keep_file = status == ImportStatus.FAILED
        job.status = status
        job.finished_at = now
        job.heartbeat_at = now
        job.error_message = storable(error) or (  # an error may quote the file
            f"{job.invalid} of {job.processed_rows} rows were invalid" if job.invalid else ""
        )
        job.total_rows = job.processed_rows
        job.progress = 100.0 if status != ImportStatus.FAILED else job.progress
        job.stats = stats
        path = job.file_path
        if not keep_file:
            job.file_path = ""
        job.save()
        audit_record(
            actor=Actor.system(),
            action="import",
            entity_type="import_job",
            entity_id=job.pk,
            owner_id=job.owner_id,
            user_action=f"Import into '{job.list_name}' {import_status_label(status).lower()}: "
            f"{job.created} created, {job.updated} updated, "
            f"{job.duplicates} duplicates, {job.invalid} invalid"
            + (f", {job.warnings} fields left out" if job.warnings else ""),
            after={"status": status, "created": job.created, "updated": job.updated,
                   "duplicates": job.duplicates, "invalid": job.invalid, "warnings": job.warnings,
                   "error": job.error_message},
        )
        services.import_event_emit(job=job)
        if not keep_file and path:
            transaction.on_commit(lambda: Path(path).unlink(missing_ok=True))
    return job
