"""An import's life beyond the happy path: re-imports, cancel while running, a worker that dies
and the job resumed from its checkpoint, and what happens to the uploaded file."""

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditLog
from imports import pipeline, services
from imports.models import ImportJob, ImportRowError, ImportStatus
from imports.tests.helpers import import_file, run_now, write
from imports.tests.support import set_state, stored_files
from imports.writers import seen_table
from inboxerr.actors import Actor
from subscribers.models import Subscriber, SubscriberList, Suppression

pytestmark = pytest.mark.django_db(transaction=True)


class WorkerDied(BaseException):
    """Stands in for the worker process being killed between two chunks. A BaseException, as
    the run's crash handling catches Exceptions only: a killed process records nothing, and the
    crash is found later by the sweeper (or by a worker taking the silent job over)."""


def big_csv(rows: int = 40) -> str:
    """Rows with a duplicate every 7th row and an invalid address every 11th."""
    lines = ["email,name,plan"]
    for i in range(rows):
        if i % 11 == 10:
            lines.append(f"broken-{i},Bad {i},x")
        elif i % 7 == 6:
            lines.append(f"p{i - 3}@x.io,Dup {i},y")
        else:
            lines.append(f"p{i}@x.io,P {i},plan{i % 3}")
    return "\n".join(lines) + "\n"


def counts(job: ImportJob) -> tuple:
    return (job.status, job.processed_rows, job.created, job.updated, job.duplicates, job.invalid, job.total_rows)


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        return name in connection.introspection.table_names(cursor)


# --- Re-import -----------------------------------------------------------------------------------


def test_reimport_updates_changed_rows_and_leaves_unchanged_ones(owner, tmp_path):
    run_now(import_file(owner, write(tmp_path, "email,name,plan\na@x.io,Ann,pro\nb@x.io,Bo,free\nc@x.io,Cy,\n")))
    before = {s.key: s.updated_at for s in Subscriber.objects.all()}

    job = run_now(import_file(owner, write(tmp_path, "email,name,plan\na@x.io,Ann,pro\nb@x.io,Bob,gold\nd@x.io,Di,\n", "2.csv")))

    assert (job.status, job.created, job.updated, job.stats["unchanged"]) == ("completed", 1, 1, 1)
    a, b, c = (Subscriber.objects.get(key=k) for k in ("a@x.io", "b@x.io", "c@x.io"))
    assert a.updated_at == before["a@x.io"] and a.import_job_id != job.pk  # untouched
    assert (b.name, b.custom_fields, b.import_job_id) == ("Bob", {"plan": "gold"}, job.pk)
    assert c.name == "Cy"  # not in the second file: kept
    assert SubscriberList.objects.get().subscriber_count == Subscriber.objects.count() == 4


def test_reimport_with_blank_cells_never_erases_values(owner, tmp_path):
    run_now(import_file(owner, write(tmp_path, "email,name,plan,city\na@x.io,Ann,pro,Oslo\n")))

    job = run_now(import_file(owner, write(tmp_path, "email,name,plan,tier\na@x.io,,basic,\n", "2.csv")))

    a = Subscriber.objects.get()
    assert job.updated == 1
    assert a.name == "Ann" and a.custom_fields == {"plan": "basic", "city": "Oslo"}


@pytest.mark.parametrize("held", ["unsubscribed", "bounced"])
def test_reimport_never_reactivates_unsubscribed_or_bounced(owner, tmp_path, held):
    run_now(import_file(owner, write(tmp_path, f"email,name,status\na@x.io,Ann,{held}\nb@x.io,Bo,active\n")))
    assert Suppression.objects.filter(owner=owner, channel="email", address="a@x.io", reason=held).exists()

    job = run_now(import_file(owner, write(tmp_path, "email,name,status\na@x.io,Ann B,active\nb@x.io,Bo,inactive\n", "2.csv")))
    run_now(import_file(owner, write(tmp_path, "email,name\na@x.io,Ann C\n", "3.csv")))

    assert job.status == ImportStatus.COMPLETED
    a = Subscriber.objects.get(key="a@x.io")
    assert a.status == held and a.name == "Ann C"
    assert Subscriber.objects.get(key="b@x.io").status == "inactive"


def test_update_existing_false_leaves_existing_rows_untouched(owner, tmp_path):
    run_now(import_file(owner, write(tmp_path, "email,name,plan\na@x.io,Ann,pro\n")))
    before = Subscriber.objects.get()

    job = run_now(import_file(
        owner, write(tmp_path, "email,name,plan\na@x.io,Changed,gold\nb@x.io,Bo,\n", "2.csv"), update_existing=False))

    assert (job.status, job.created, job.updated, job.stats["unchanged"]) == ("completed", 1, 0, 1)
    a = Subscriber.objects.get(key="a@x.io")
    assert (a.name, a.custom_fields, a.updated_at, a.import_job_id) == ("Ann", {"plan": "pro"}, before.updated_at, before.import_job_id)
    assert SubscriberList.objects.get().subscriber_count == 2


def test_reimport_into_another_list_creates_separate_subscribers(owner, tmp_path):
    run_now(import_file(owner, write(tmp_path, "email\na@x.io\n")))

    job = run_now(import_file(owner, write(tmp_path, "email\na@x.io\n", "2.csv"), list_name="Other"))

    assert job.created == 1
    assert Subscriber.objects.filter(key="a@x.io").count() == 2


# --- Cancel while running ------------------------------------------------------------------------


def test_cancel_while_running_keeps_committed_chunks_and_stops(owner, tmp_path, settings):
    settings.IMPORT_CHUNK_ROWS = 3
    job = import_file(owner, write(tmp_path, big_csv(30)))
    path = Path(job.file_path)
    token = pipeline.import_claim(job_id=job.pk)
    heard = []

    def cancel_after_first_chunk(rows, offset):
        heard.append(rows)
        if len(heard) == 1:
            services.import_cancel(actor=Actor(user=owner, source="api"), job=job)

    result = pipeline.import_run(job_id=job.pk, token=token, on_chunk=cancel_after_first_chunk)

    assert heard == [3]  # no chunk committed after the cancel
    assert result.status == ImportStatus.CANCELLED
    job.refresh_from_db()
    assert job.status == ImportStatus.CANCELLED
    assert job.processed_rows == 3 and job.created == 3
    assert Subscriber.objects.count() == 3 == SubscriberList.objects.get().subscriber_count
    assert sorted(Subscriber.objects.values_list("key", flat=True)) == ["p0@x.io", "p1@x.io", "p2@x.io"]
    assert not path.exists() and job.file_path == ""
    assert not table_exists(seen_table(job.pk))


def test_cancel_while_running_from_another_connection_stops_at_the_next_chunk(owner, tmp_path, settings):
    """The cancel comes from the web process while the worker's first chunk is committed;
    the worker must notice at the next chunk and leave the job cancelled, without raising."""
    settings.IMPORT_CHUNK_ROWS = 4
    job = import_file(owner, write(tmp_path, big_csv(20)))
    token = pipeline.import_claim(job_id=job.pk)

    def cancel(rows, offset):
        if rows == 4:
            # As the web process would: a separate request, after the chunk committed.
            ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.CANCELLED, file_path="")

    result = pipeline.import_run(job_id=job.pk, token=token, on_chunk=cancel)

    assert result.status == ImportStatus.CANCELLED
    job.refresh_from_db()
    assert (job.processed_rows, job.created) == (4, 4)
    assert Subscriber.objects.count() == 4


# --- Worker killed, job resumed ------------------------------------------------------------------


def run_uninterrupted(owner, tmp_path, content: str) -> tuple:
    job = run_now(import_file(owner, write(tmp_path, content, "ref.csv"), list_name="Reference"))
    keys = sorted(Subscriber.objects.filter(list__name="Reference").values_list("key", flat=True))
    return counts(job), keys, list(ImportRowError.objects.filter(job=job).values_list("row", "reason"))


def crash_after(chunks: int):
    def on_chunk(rows, offset):
        on_chunk.calls += 1
        if on_chunk.calls == chunks:
            raise WorkerDied
    on_chunk.calls = 0
    return on_chunk


@pytest.mark.parametrize("chunk_rows", [3, 5])
def test_job_killed_mid_import_resumes_from_its_checkpoint_with_exact_counts(owner, tmp_path, settings, chunk_rows):
    settings.IMPORT_CHUNK_ROWS = chunk_rows
    content = big_csv(40)
    expected_counts, expected_keys, expected_errors = run_uninterrupted(owner, tmp_path, content)

    job = import_file(owner, write(tmp_path, content))
    token = pipeline.import_claim(job_id=job.pk)
    with pytest.raises(WorkerDied):
        pipeline.import_run(job_id=job.pk, token=token, on_chunk=crash_after(3))

    job.refresh_from_db()
    assert job.status == ImportStatus.PROCESSING and job.processed_rows == 3 * chunk_rows
    assert job.checkpoint["row"] == 3 * chunk_rows + 1
    assert Path(job.file_path).exists()
    # The worker is gone: no heartbeat since. The sweeper hands the job back to the queue.
    set_state(job, heartbeat_at=timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 60))
    assert services.imports_recover_stuck() == [str(job.pk)]
    job.refresh_from_db()
    assert (job.status, job.retry_count) == (ImportStatus.PENDING, 1)

    job = run_now(job)

    assert counts(job) == expected_counts
    keys = sorted(Subscriber.objects.filter(list__name="News").values_list("key", flat=True))
    assert keys == expected_keys and len(keys) == len(set(keys))
    assert list(ImportRowError.objects.filter(job=job).values_list("row", "reason")) == expected_errors
    assert SubscriberList.objects.get(name="News").subscriber_count == len(keys)
    assert job.file_path == "" and stored_files() == []
    audit = list(AuditLog.objects.filter(entity_id=str(job.pk)).order_by("id").values_list("user_action", flat=True))
    assert any("resuming after row" in line for line in audit)
    assert any("requeued after its worker crashed (retry 1)" in line for line in audit)


def test_a_second_worker_takes_over_a_silent_job_directly(owner, tmp_path, settings):
    settings.IMPORT_CHUNK_ROWS = 4
    content = big_csv(24)
    expected_counts, expected_keys, _ = run_uninterrupted(owner, tmp_path, content)
    job = import_file(owner, write(tmp_path, content))
    first = pipeline.import_claim(job_id=job.pk)
    with pytest.raises(WorkerDied):
        pipeline.import_run(job_id=job.pk, token=first, on_chunk=crash_after(2))

    assert pipeline.import_claim(job_id=job.pk) is None  # still alive as far as anyone knows
    set_state(job, heartbeat_at=timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 1))
    second = pipeline.import_claim(job_id=job.pk)
    assert second and second != first
    job = pipeline.import_run(job_id=job.pk, token=second)

    assert counts(job) == expected_counts
    assert sorted(Subscriber.objects.filter(list__name="News").values_list("key", flat=True)) == expected_keys


def test_the_old_worker_cannot_write_after_its_job_was_taken_over(owner, tmp_path, settings):
    settings.IMPORT_CHUNK_ROWS = 4
    job = import_file(owner, write(tmp_path, big_csv(16)))
    old = pipeline.import_claim(job_id=job.pk)
    set_state(job, heartbeat_at=timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 1))
    new = pipeline.import_claim(job_id=job.pk)

    result = pipeline.import_run(job_id=job.pk, token=old)

    assert result.status == ImportStatus.PROCESSING and result.worker_token == new
    assert result.processed_rows == 0 and not Subscriber.objects.exists()


def test_recover_fails_a_job_after_too_many_worker_losses(owner, tmp_path, settings):
    settings.IMPORT_MAX_AUTO_RETRIES = 2
    job = import_file(owner, write(tmp_path, "email\na@x.io\n"))
    set_state(job, status=ImportStatus.PROCESSING, crash_count=2, checkpoint={"offset": 6, "row": 1200},
              heartbeat_at=datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC))

    assert services.imports_recover_stuck() == []

    job.refresh_from_db()
    assert (job.status, job.crash_count) == (ImportStatus.FAILED, 3)
    assert job.error_message == (
        "Worker crashed 3 times while processing this import; last error: the worker stopped after row 1,200 "
        "without finishing (killed, out of memory or restarted); last heartbeat 2026-03-01 12:30:05 UTC"
    )
    assert Path(job.file_path).exists()  # kept for a manual retry
    assert services.imports_recover_stuck() == [] and ImportJob.objects.get(pk=job.pk).status == ImportStatus.FAILED


# --- The uploaded file ---------------------------------------------------------------------------


def test_file_is_deleted_on_success(owner, tmp_path):
    job = import_file(owner, write(tmp_path, "email\na@x.io\n"))
    path = Path(job.file_path)

    job = run_now(job)

    assert job.status == ImportStatus.COMPLETED
    assert job.file_path == "" and not path.exists() and stored_files() == []
    assert job.sha256  # only the hash is kept
    assert not table_exists(seen_table(job.pk))


def test_file_is_deleted_on_partial_success(owner, tmp_path):
    job = run_now(import_file(owner, write(tmp_path, "email\na@x.io\nbad\n")))

    assert job.status == ImportStatus.PARTIALLY_COMPLETED and stored_files() == []


def test_file_is_kept_when_every_row_is_invalid(owner, tmp_path):
    job = import_file(owner, write(tmp_path, "email,name\nnope,A\nstill-nope,B\n,C\n"))
    path = Path(job.file_path)

    job = run_now(job)

    assert job.status == ImportStatus.FAILED
    assert (job.processed_rows, job.invalid, job.created) == (3, 3, 0)
    assert job.error_message == "3 of 3 rows were invalid"
    assert job.file_path == str(path) and path.exists()
    assert not Subscriber.objects.exists()
    assert AuditLog.objects.filter(entity_id=str(job.pk), action="import", after__status="failed").exists()


def test_job_whose_file_disappeared_fails_with_a_reason(owner, tmp_path):
    job = import_file(owner, write(tmp_path, "email\na@x.io\n"))
    Path(job.file_path).unlink()

    job = run_now(job)

    assert job.status == ImportStatus.FAILED
    assert job.error_message == "The uploaded file is no longer available"


def test_job_whose_list_was_deleted_fails_with_a_reason(owner, tmp_path):
    job = import_file(owner, write(tmp_path, "email\na@x.io\n"))
    SubscriberList.objects.all().delete()

    job = run_now(job)

    assert job.status == ImportStatus.FAILED and job.error_message == "The list was deleted"


def test_sweep_removes_files_of_failed_jobs_past_retention(owner, tmp_path, settings):
    settings.IMPORT_RETENTION_HOURS = 2
    old = run_now(import_file(owner, write(tmp_path, "email\nbad\n", "old.csv")))
    recent = run_now(import_file(owner, write(tmp_path, "email\nworse\n", "new.csv")))
    pending = import_file(owner, write(tmp_path, "email\na@x.io\n", "p.csv"))
    set_state(old, finished_at=timezone.now() - timedelta(hours=3))
    old_path, recent_path = Path(old.file_path), Path(recent.file_path)

    removed = services.import_files_sweep()

    assert removed == 1
    assert not old_path.exists() and recent_path.exists() and Path(pending.file_path).exists()
    old.refresh_from_db()
    assert old.file_path == "" and old.status == ImportStatus.FAILED


def test_sweep_removes_old_files_no_job_refers_to(owner, tmp_path, settings):
    settings.IMPORT_RETENTION_HOURS = 1
    job = import_file(owner, write(tmp_path, "email\na@x.io\n"))
    directory = Path(settings.IMPORT_DIR)
    orphan_old = directory / "dead-request.upload"
    orphan_new = directory / "in-flight.upload"
    orphan_old.write_bytes(b"x")
    orphan_new.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(orphan_old, (two_hours_ago, two_hours_ago))
    os.utime(job.file_path, (two_hours_ago, two_hours_ago))

    assert services.import_files_sweep() == 1

    assert not orphan_old.exists() and orphan_new.exists() and Path(job.file_path).exists()


def test_a_failed_jobs_file_after_sweep_cannot_be_retried(owner, tmp_path, settings):
    settings.IMPORT_RETENTION_HOURS = 1
    job = run_now(import_file(owner, write(tmp_path, "email\nbad\n")))
    set_state(job, finished_at=timezone.now() - timedelta(hours=2))
    services.import_files_sweep()

    from inboxerr.errors import Conflict

    with pytest.raises(Conflict, match="its file is no longer kept"):
        services.import_force_retry(actor=Actor(user=owner, source="api"), job=job)


def test_clearing_a_crashed_job_drops_its_table_of_seen_keys(owner, tmp_path, settings):
    """A job that died keeps its per-job key table (a retry needs it); once its record is
    cleared nothing can resume it, so the table must not stay behind in the database."""
    settings.IMPORT_CHUNK_ROWS = 3
    job = import_file(owner, write(tmp_path, big_csv(12)))
    token = pipeline.import_claim(job_id=job.pk)
    with pytest.raises(WorkerDied):
        pipeline.import_run(job_id=job.pk, token=token, on_chunk=crash_after(1))
    assert table_exists(seen_table(job.pk))
    set_state(job, heartbeat_at=timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 1))
    services.imports_cleanup_stuck(actor=Actor(user=owner, source="api"), jobs=ImportJob.objects.all())

    result = services.jobs_clear(actor=Actor(user=owner, source="api"), jobs=ImportJob.objects.all())

    assert result["deleted_count"] == 1 and stored_files() == []
    assert not table_exists(seen_table(job.pk))


MESSY_VARIANTS = {
    "bom_and_quoted_newlines": (
        "\ufeffE-mail,Name,Notes\n"
        + "".join(f'p{i}@x.io,"P {i}","line a\nline b {i}"\n' if i % 2 else f"p{i}@x.io,P {i},\n" for i in range(14))
        + "p3@x.io,Dup,\nbad,Bad,\n"
    ).encode(),
    "cp1252_semicolons": (
        "email;name\n" + "".join(f"p{i}@x.io;Jos\xe9 {i}\n" for i in range(14)) + "p2@x.io;Dup\n;nobody\n"
    ).encode("cp1252"),
    "crlf": ("email,name\r\n" + "".join(f"p{i}@x.io,N{i}\r\n" for i in range(14)) + "p0@x.io,Dup\r\n").encode(),
}


@pytest.mark.parametrize("variant", sorted(MESSY_VARIANTS))
def test_resume_is_exact_for_messy_files(owner, tmp_path, settings, variant):
    settings.IMPORT_CHUNK_ROWS = 3
    content = MESSY_VARIANTS[variant]
    expected_counts, expected_keys, expected_errors = run_uninterrupted(owner, tmp_path, content)
    expected_names = dict(Subscriber.objects.filter(list__name="Reference").values_list("key", "name"))

    job = import_file(owner, write(tmp_path, content))
    with pytest.raises(WorkerDied):
        pipeline.import_run(job_id=job.pk, token=pipeline.import_claim(job_id=job.pk), on_chunk=crash_after(2))
    set_state(job, heartbeat_at=timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 1))
    job = pipeline.import_run(job_id=job.pk, token=pipeline.import_claim(job_id=job.pk))

    assert counts(job) == expected_counts
    assert dict(Subscriber.objects.filter(list__name="News").values_list("key", "name")) == expected_names
    assert sorted(expected_names) == expected_keys
    assert list(ImportRowError.objects.filter(job=job).values_list("row", "reason")) == expected_errors
