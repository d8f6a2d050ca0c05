"""Poison jobs with a real django-q2 worker (`manage.py qcluster`): an import whose run crashes
every worker that takes it is resumed IMPORT_MAX_AUTO_RETRIES times, then parked `failed` with
the reason and its crashes counted, and handed out no more.

Two real ways to crash, neither a hook in Inboxerr's code:
- the database refuses the chunk (a CHECK constraint the test adds to the subscribers table,
  as a DBA's constraint or trigger would): the run raises, and the worker records the crash;
- the worker process is killed (SIGKILL, as the out-of-memory killer does) while it writes the
  chunk: nothing is recorded, the sweeper finds the silent job. The kill comes from
  imports/tests/crashing_worker/sitecustomize.py, which Python loads at start-up only in the
  qcluster this test starts with that folder on its PYTHONPATH."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import Schedule

from imports import services
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import import_file
from imports.tests.support import poison_file, queued_runs, refuse_poison  # noqa: F401 (a fixture)
from inboxerr.tests.processes import kill_group, start_qcluster, wait_for
from subscribers.models import Subscriber

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RETRIES = 2  # IMPORT_MAX_AUTO_RETRIES here and in the worker: the third crash parks the job
CRASHING_WORKER = Path(__file__).parent / "crashing_worker"


@pytest.fixture
def start_worker(import_dir, settings):
    settings.IMPORT_MAX_AUTO_RETRIES = RETRIES
    # The test runs the sweeper itself, one crash at a time: none scheduled in the cluster.
    Schedule.objects.all().delete()
    procs = []

    def start(**env: str):
        proc = start_qcluster(IMPORT_DIR=str(import_dir), Q_WORKERS="1", IMPORT_CHUNK_ROWS="100",
                              IMPORT_MAX_AUTO_RETRIES=str(RETRIES), **env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        kill_group(proc)


def assert_parked(job: ImportJob, last_error_start: str) -> None:
    assert (job.status, job.crash_count, job.retry_count) == (ImportStatus.FAILED, RETRIES + 1, RETRIES)
    assert job.error_message.startswith(
        f"Worker crashed {RETRIES + 1} times while processing this import; last error: {last_error_start}"
    ), job.error_message
    # Each run resumed at the checkpoint after the first chunk and went no further.
    assert (job.processed_rows, job.checkpoint["row"], job.created) == (100, 101, 100)
    assert Subscriber.objects.count() == 100 and not Subscriber.objects.filter(key="poison@example.com").exists()
    assert Path(job.file_path).exists()  # kept for a retry once the cause is fixed
    # No loop: the sweeper leaves a failed job alone and no run of it waits in the queue.
    assert services.imports_recover_stuck() == []
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.FAILED
    assert queued_runs(job, waiting=True) == 0


def test_a_chunk_the_database_refuses_is_retried_then_parked_failed_with_the_error(
        owner, tmp_path, start_worker, refuse_poison):
    job = import_file(owner, poison_file(tmp_path / "people.csv"))
    start_worker()

    job = wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status=ImportStatus.FAILED).first(),
                   what="the job to be parked failed")

    assert_parked(job, 'IntegrityError: new row for relation "subscribers_subscriber" violates check constraint "no_poison"')


def test_a_job_that_kills_its_worker_is_parked_failed_after_the_allowed_crashes(owner, tmp_path, start_worker):
    deaths = tmp_path / "deaths.log"
    deaths.touch()
    job = import_file(owner, poison_file(tmp_path / "people.csv"))
    worker = start_worker(PYTHONPATH=str(CRASHING_WORKER), CRASHING_WORKER_KEY="poison@example.com",
                          CRASHING_WORKER_LOG=str(deaths))

    for crash in range(1, RETRIES + 2):
        wait_for(lambda: len(deaths.read_text().splitlines()) == crash, what=f"worker death {crash}")
        # The dead worker's heartbeat goes stale (aged here rather than waited for); the
        # sweeper, as scheduled every minute, finds the job.
        ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        taken = wait_for(lambda: services.imports_recover_stuck() or ImportJob.objects.filter(
            pk=job.pk, status=ImportStatus.FAILED).exists(), what="the sweeper to take the job")
        assert taken == ([str(job.pk)] if crash <= RETRIES else True)  # requeued, until parked
        assert ImportJob.objects.get(pk=job.pk).crash_count == crash

    job.refresh_from_db()
    assert_parked(job, "the worker stopped after row 101 without finishing (killed, out of memory or restarted)")
    assert len(deaths.read_text().splitlines()) == RETRIES + 1
    assert len(set(deaths.read_text().splitlines())) == RETRIES + 1  # a new worker process each time
    assert worker.poll() is None  # the cluster itself lived on, replacing each dead worker
