"""End to end with a real django-q2 worker process: an upload queued by the service is imported
by `manage.py qcluster`; a worker killed with SIGKILL mid-import is recovered from its
checkpoint with exact final counts; rows with text the database cannot store are reported, not
fatal to the worker."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from imports import services
from imports.models import ImportJob, ImportStatus
from imports.models import ImportRowError
from imports.tests.helpers import import_file
from inboxerr.actors import Actor
from inboxerr.tests.processes import kill_group, start_qcluster, wait_for
from subscribers.models import Subscriber, SubscriberList

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def start_worker(import_dir):
    procs = []

    def start(**env: str):
        proc = start_qcluster(IMPORT_DIR=str(import_dir), Q_WORKERS="1", **env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        kill_group(proc)


def _write_csv(path: Path, unique: int) -> tuple[int, int, int]:
    """`unique` valid addresses, every 20th repeated later (duplicates), every 100th row invalid."""
    duplicates = invalid = 0
    with open(path, "w") as handle:
        handle.write("email,first_name,plan\n")
        for i in range(unique):
            handle.write(f"user{i}@example.com,Name{i},plan{i % 3}\n")
            if i % 20 == 0:
                handle.write(f"USER{i}@example.com,Again{i},plan\n")
                duplicates += 1
            if i % 100 == 0:
                handle.write(f"not-an-address-{i},Bad,plan\n")
                invalid += 1
    return unique, duplicates, invalid


def test_worker_process_runs_a_queued_import(owner, tmp_path, start_worker):
    unique, duplicates, invalid = _write_csv(tmp_path / "small.csv", 2000)
    job = import_file(owner, tmp_path / "small.csv")
    start_worker()
    job = wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk, status__in=[ImportStatus.PARTIALLY_COMPLETED, ImportStatus.COMPLETED, ImportStatus.FAILED]).first(),
        what="the import to finish",
    )
    assert job.status == ImportStatus.PARTIALLY_COMPLETED
    assert (job.created, job.duplicates, job.invalid) == (unique, duplicates, invalid)
    assert Subscriber.objects.filter(list__name="News").count() == unique
    assert job.file_path == "" and not list(Path(services.import_dir()).iterdir())


def test_worker_killed_mid_import_resumes_from_its_checkpoint_with_exact_counts(owner, tmp_path, start_worker, settings):
    unique, duplicates, invalid = _write_csv(tmp_path / "big.csv", 60_000)
    job = import_file(owner, tmp_path / "big.csv")
    worker = start_worker(IMPORT_CHUNK_ROWS="1000")

    # Let a few chunks commit, then kill the whole worker (cluster and its children) at once.
    wait_for(lambda: ImportJob.objects.get(pk=job.pk).processed_rows >= 5000, what="some chunks to commit")
    kill_group(worker)
    killed = ImportJob.objects.get(pk=job.pk)
    assert killed.status == ImportStatus.PROCESSING
    assert 0 < killed.processed_rows < unique + duplicates + invalid
    # Exactly the committed chunks are in the table: nothing half-written.
    assert Subscriber.objects.filter(list__name="News").count() == killed.created
    assert SubscriberList.objects.get(name="News").subscriber_count == killed.created

    # The heartbeat goes stale; the sweeper hands the job to a new worker, which resumes.
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert services.imports_recover_stuck() == [str(job.pk)]
    start_worker(IMPORT_CHUNK_ROWS="1000")
    done = wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk).exclude(status__in=[ImportStatus.PENDING, ImportStatus.PROCESSING]).first(),
        timeout=120, what="the resumed import to finish",
    )
    assert done.status == ImportStatus.PARTIALLY_COMPLETED
    assert done.retry_count == 1
    assert (done.processed_rows, done.created, done.updated, done.duplicates, done.invalid) == (
        unique + duplicates + invalid, unique, 0, duplicates, invalid,
    )
    assert Subscriber.objects.filter(list__name="News").count() == unique
    assert SubscriberList.objects.get(name="News").subscriber_count == unique
    assert done.row_errors.count() == invalid


def test_the_worker_reports_rows_the_database_cannot_store_and_finishes_the_job(owner, tmp_path, start_worker):
    """Before, such a row failed the chunk's COPY: the job stayed `processing`, was handed out
    again and failed again. Now the real worker finishes both jobs with the rows reported."""
    lines = ["email,first_name,plan"] + [f"user{i}@example.com,Name {i},plan{i % 3}" for i in range(4000)]
    lines[10] = "early@x.io,Ea\x00rly,pro"
    lines[3900] = "late@x.io,Late,pl\x00an"  # far past the head of the file that is sniffed
    (tmp_path / "nul.csv").write_text("\n".join(lines) + "\n")
    csv_job = import_file(owner, tmp_path / "nul.csv")
    records = [{"email": "ann@x.io", "first_name": "An\x00n"}, {"email": "bo@x.io", "plan": "gold\ud800"},
               {"email": "cy@x.io", "first_name": "Cy"}]
    json_job = services.import_create_from_records(actor=Actor(user=owner, source="api"), owner=owner,
                                                   list_name="Other", records=records)
    start_worker(IMPORT_CHUNK_ROWS="1000")

    finished = [ImportStatus.PARTIALLY_COMPLETED, ImportStatus.COMPLETED, ImportStatus.FAILED]
    for job in (csv_job, json_job):
        wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status__in=finished).exists(), what="the import to finish")
    csv_job.refresh_from_db()
    json_job.refresh_from_db()

    assert (csv_job.status, csv_job.created, csv_job.invalid) == (ImportStatus.PARTIALLY_COMPLETED, 3998, 2)
    assert list(ImportRowError.objects.filter(job=csv_job).values_list("row", "reason")) == [
        (11, "NUL character in column 'first_name'"), (3901, "NUL character in column 'plan'"),
    ]
    assert (json_job.status, json_job.created, json_job.invalid) == (ImportStatus.PARTIALLY_COMPLETED, 1, 2)
    assert list(ImportRowError.objects.filter(job=json_job).values_list("row", "reason")) == [
        (1, "first_name: contains a NUL character, which cannot be stored"),
        (2, "plan: contains a lone surrogate (invalid Unicode), which cannot be stored"),
    ]
    assert csv_job.retry_count == json_job.retry_count == 0
