"""End to end with a real django-q2 worker process: an upload queued by the service is imported
by `manage.py qcluster`; a worker killed with SIGKILL mid-import is recovered from its
checkpoint with exact final counts."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from imports import services
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import import_file
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
