"""Poison jobs in one process: every way a run can crash (it raises; its worker goes silent and
the sweeper or another worker finds it) counts against IMPORT_MAX_AUTO_RETRIES, after which the
job is failed with the reason, shown by the API and the admin's job page. The same with real
worker processes: test_poison_jobs_e2e.py."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditLog
from imports import pipeline, services
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import import_file, run_now
from imports.tests.support import job_url, poison_file, queued_runs, refuse_poison, set_state  # noqa: F401
from inboxerr.actors import Actor
from inboxerr.tests.admin_browser import browser_for
from inboxerr.webhooks import services as webhooks
from inboxerr.webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = 'IntegrityError: new row for relation "subscribers_subscriber" violates check constraint "no_poison"'


@pytest.fixture
def poisoned(owner, tmp_path, settings, refuse_poison) -> ImportJob:
    settings.IMPORT_CHUNK_ROWS = 100
    settings.IMPORT_MAX_AUTO_RETRIES = 2
    return import_file(owner, poison_file(tmp_path / "people.csv"))


def audit_lines(job: ImportJob) -> list[str]:
    return list(AuditLog.objects.filter(entity_id=str(job.pk)).order_by("id").values_list("user_action", flat=True))


def test_a_run_that_raises_is_a_crash_resumed_from_its_checkpoint_and_queued_again(poisoned):
    job = run_now(poisoned)

    assert (job.status, job.crash_count, job.retry_count, job.worker_token) == (ImportStatus.PENDING, 1, 1, "")
    assert job.error_message == (
        f"Worker crashed (1 of 3 crashes allowed); resuming from the checkpoint. Last error: {REFUSED}"
    )
    assert (job.processed_rows, job.checkpoint["row"]) == (100, 101)  # the chunk before the crash stays
    assert queued_runs(job) == 2  # the first run's task, and the one resuming it
    assert audit_lines(job)[-1] == "Import into 'News' requeued after its worker crashed (retry 1)"


def test_after_the_allowed_crashes_the_job_is_failed_with_the_reason_and_not_queued_again(poisoned, settings, owner):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    webhooks.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner, url="http://127.0.0.1:9/hook")
    job = poisoned
    for _ in range(3):
        job = run_now(job)

    assert (job.status, job.crash_count, job.retry_count) == (ImportStatus.FAILED, 3, 2)
    assert job.error_message == f"Worker crashed 3 times while processing this import; last error: {REFUSED}"
    assert job.finished_at is not None and Path(job.file_path).exists()
    assert queued_runs(job) == 3  # the first run and two resumptions, no more
    assert audit_lines(job)[-1] == "Import into 'News' failed: its worker crashed 3 times"
    event = WebhookDelivery.objects.get(event="import.failed")
    assert event.payload["error"] == job.error_message and event.payload["import_id"] == str(job.pk)
    # The sweeper and another worker leave it alone.
    assert services.imports_recover_stuck() == [] and pipeline.import_claim(job_id=job.pk) is None


def test_a_manual_retry_of_a_parked_job_gives_it_one_more_run(poisoned, owner):
    job = poisoned
    for _ in range(3):
        job = run_now(job)

    job = services.import_force_retry(actor=Actor(user=owner, source="api"), job=job)
    job = run_now(job)

    assert (job.status, job.crash_count, job.retry_count) == (ImportStatus.FAILED, 4, 3)
    assert job.error_message.startswith("Worker crashed 4 times while processing this import; last error: ")


def test_a_worker_taking_over_a_silent_job_counts_the_crash_and_parks_it_at_the_limit(owner, tmp_path, settings):
    settings.IMPORT_MAX_AUTO_RETRIES = 1
    job = import_file(owner, poison_file(tmp_path / "people.csv"))
    silent = timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 60)

    assert pipeline.import_claim(job_id=job.pk) is not None
    set_state(job, heartbeat_at=silent)
    assert pipeline.import_claim(job_id=job.pk) is not None  # taken over: crash 1 of the 2 allowed
    assert ImportJob.objects.get(pk=job.pk).crash_count == 1
    set_state(job, heartbeat_at=silent)

    assert pipeline.import_claim(job_id=job.pk) is None

    job.refresh_from_db()
    assert (job.status, job.crash_count) == (ImportStatus.FAILED, 2)
    assert job.error_message.startswith(
        "Worker crashed 2 times while processing this import; last error: the worker stopped without finishing "
        "(killed, out of memory or restarted); last heartbeat "
    )


def test_the_api_and_the_tracker_show_a_parked_job_with_its_crashes(api, poisoned):
    job = poisoned
    for _ in range(3):
        job = run_now(job)

    detail = api.get(job_url(job)).json()
    task = api.get(f"/api/v1/tasks/{job.pk}").json()

    assert (detail["status"], detail["crash_count"], detail["retry_count"]) == ("failed", 3, 2)
    assert detail["error_message"] == task["error"] == job.error_message


def test_the_job_page_shows_the_reason_and_the_crash_count(owner, poisoned):
    job = poisoned
    for _ in range(3):
        job = run_now(job)

    content = browser_for(owner).get(f"/admin/imports/importjob/{job.pk}/change/").content.decode()

    assert "Worker crashed 3 times while processing this import; last error: IntegrityError: new row" in content
    assert '<div class="readonly">3</div>' in content  # the crash count field
    assert "Crash count" in content
