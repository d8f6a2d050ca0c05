"""Seed 000's job routes under /api/v1/subscribers/: the JSON background upload on the import
pipeline, the job overview, stuck cleanup, force-retry, clear-all and the upload queue."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditLog
from imports.models import ImportJob, ImportRowError, ImportSource, ImportStatus
from imports.tests.helpers import run_now
from imports.tests.support import (
    BACKGROUND_UPLOAD, CLEANUP_STUCK, CLEAR_ALL, JOBS_STATUS, MANUAL_RETRY, QUEUE_RETRY, QUEUE_STATUS,
    force_retry_url, pending_job, queued_job_ids, read_csv, set_state, stored_files, stuck,
)
from subscribers.models import Subscriber, SubscriberList

pytestmark = pytest.mark.django_db(transaction=True)

RECORDS = [
    {"email": "ann@x.io", "name": "Ann", "first_name": "Ann", "plan": "pro"},
    {"email": "BO@x.io", "name": "Bo"},
    {"email": "ann@x.io", "name": "Ann twice"},
    {"email": "not-an-email", "name": "Bad"},
    {"name": "No key"},
]


# --- background-upload ---------------------------------------------------------------------------


def test_background_upload_queues_a_json_job_that_imports_the_records(api, owner):
    response = api.post(BACKGROUND_UPLOAD, {"list_name": "Seed", "subscribers": RECORDS, "processing_mode": "background"},
                        format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    job = ImportJob.objects.get()
    assert body["import_id"] == body["job_id"] == str(job.pk) and body["status"] == "pending"
    assert job.source == ImportSource.JSON and job.owner == owner and job.list.name == "Seed"
    assert Path(job.file_path).exists() and body["sha256"] == job.sha256 and len(job.sha256) == 64
    assert queued_job_ids() == [str(job.pk)]

    job = run_now(job)

    assert job.status == ImportStatus.PARTIALLY_COMPLETED
    assert (job.processed_rows, job.created, job.duplicates, job.invalid) == (5, 2, 1, 2)
    ann = Subscriber.objects.get(key="ann@x.io")
    assert ann.name == "Ann" and ann.standard_fields == {"first_name": "Ann"} and ann.custom_fields == {"plan": "pro"}
    assert Subscriber.objects.filter(key="bo@x.io").exists()
    errors = dict(ImportRowError.objects.filter(job=job).values_list("row", "reason"))
    assert set(errors) == {4, 5}
    assert errors[4].startswith("email:") and errors[5] == "email: is required"
    assert SubscriberList.objects.get(name="Seed").subscriber_count == 2
    assert job.file_path == "" and stored_files() == []


def test_the_same_background_upload_twice_is_refused_with_the_first_job(api):
    first = api.post(BACKGROUND_UPLOAD, {"list_name": "Seed", "subscribers": RECORDS}, format="json").json()

    response = api.post(BACKGROUND_UPLOAD, {"list_name": "Seed", "subscribers": RECORDS}, format="json")

    assert response.status_code == 409
    assert response.json()["import_id"] == first["import_id"]
    assert ImportJob.objects.count() == 1 and len(stored_files()) == 1


def test_error_report_of_a_json_job_lists_the_records_values(api):
    api.post(BACKGROUND_UPLOAD, {"list_name": "Seed", "subscribers": RECORDS}, format="json")
    job = run_now(ImportJob.objects.get())

    rows = read_csv(api.get(f"/api/v1/imports/{job.pk}/errors"))

    assert rows[0] == ["row", "kind", "column", "reason", "values"]
    assert [r[0] for r in rows[1:]] == ["4", "5"]
    assert "not-an-email" in rows[1][4]


def test_background_upload_needs_records(api):
    response = api.post(BACKGROUND_UPLOAD, {"list_name": "Seed", "subscribers": []}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("subscribers:")
    assert not ImportJob.objects.exists() and not SubscriberList.objects.exists()


def test_background_upload_needs_a_list_name(api):
    response = api.post(BACKGROUND_UPLOAD, {"subscribers": RECORDS}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("list_name:")
    assert not ImportJob.objects.exists()


def test_background_upload_refuses_another_processing_mode(api):
    response = api.post(BACKGROUND_UPLOAD, {"list_name": "S", "subscribers": RECORDS, "processing_mode": "inline"},
                        format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("processing_mode:")


def test_background_upload_of_non_object_records_reports_each_row(api):
    api.post(BACKGROUND_UPLOAD, {"list_name": "Seed", "subscribers": ["ann@x.io", {"email": "bo@x.io"}]}, format="json")

    job = run_now(ImportJob.objects.get())

    assert (job.created, job.invalid) == (1, 1)
    assert ImportRowError.objects.get(job=job).reason == "record: must be a JSON object"


# --- jobs/status ---------------------------------------------------------------------------------


def test_jobs_status_lists_the_latest_50_with_statistics_and_display_figures(api, owner, outsider, tmp_path):
    done = run_now(pending_job(owner, tmp_path, "email\na@x.io\nb@x.io\na@x.io\nbad\n", name="done.csv"))
    template = ImportJob.objects.get(pk=done.pk)
    older = timezone.now() - timedelta(days=1)
    ImportJob.objects.bulk_create([
        ImportJob(owner=owner, list=template.list, list_name="News", filename=f"f{i}.csv", status=ImportStatus.COMPLETED)
        for i in range(51)
    ])
    ImportJob.objects.exclude(pk=done.pk).update(created_at=older)
    pending_job(outsider, tmp_path, "email\nq@x.io\n", name="theirs.csv")

    response = api.get(JOBS_STATUS)

    assert response.status_code == 200
    jobs = response.json()["jobs"]
    assert len(jobs) == 50
    first = jobs[0]
    assert first["job_id"] == str(done.pk)  # newest first
    assert all(job["list_name"] == "News" for job in jobs)  # none of the outsider's
    assert first["status"] == "partially_completed"
    assert first["statistics"] == {
        "total_input": 4, "successfully_processed": 3, "created": 2, "updated": 0, "unchanged": 0,
        "duplicates": 1, "invalid": 1, "warnings": 0, "duplicate_percentage": 25.0,
    }
    display = first["performance_display"]
    assert set(display) == {"method_text", "speed_text", "duration_text", "efficiency_text"}
    assert display["efficiency_text"] == "75.0% processed"
    assert display["duration_text"].endswith("s")
    assert display["speed_text"].endswith("records/sec (final)")
    assert display["method_text"] == "Chunked set-based upsert"
    for key in ("job_id", "list_name", "status", "statistics", "performance_display", "progress", "retry_count"):
        assert key in first


def test_jobs_status_shows_a_silent_job_as_stuck(api, owner, tmp_path):
    job = stuck(pending_job(owner, tmp_path))

    entry = api.get(JOBS_STATUS).json()["jobs"][0]

    assert entry["job_id"] == str(job.pk)
    assert entry["status"] == "stuck" and entry["stored_status"] == "processing"
    assert entry["performance_display"]["speed_text"].endswith("records/sec")


# --- jobs/cleanup-stuck --------------------------------------------------------------------------


def test_cleanup_stuck_marks_silent_and_old_pending_jobs_failed(api, owner, outsider, tmp_path):
    silent = stuck(pending_job(owner, tmp_path, name="a.csv"))
    old_pending = set_state(pending_job(owner, tmp_path, "email\nz@x.io\n", name="b.csv"),
                            created_at=timezone.now() - timedelta(hours=2))
    alive = set_state(pending_job(owner, tmp_path, "email\ny@x.io\n", name="c.csv"),
                      status=ImportStatus.PROCESSING, heartbeat_at=timezone.now())
    fresh_pending = pending_job(owner, tmp_path, "email\nw@x.io\n", name="d.csv")
    theirs = stuck(pending_job(outsider, tmp_path, name="e.csv"))

    response = api.post(CLEANUP_STUCK)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"message", "cleaned", "timestamp", "stuck_jobs"}
    assert body["message"] == "Cleaned 2 stuck jobs" and body["cleaned"] == 2
    assert sorted((j["job_id"], j["status_was"]) for j in body["stuck_jobs"]) == sorted(
        [(str(silent.pk), "processing"), (str(old_pending.pk), "pending")])
    assert all(j["list_name"] == "News" for j in body["stuck_jobs"])
    for job in (silent, old_pending):
        job.refresh_from_db()
        assert job.status == ImportStatus.FAILED and "stuck-job cleanup" in job.error_message
        assert Path(job.file_path).exists()  # kept for a retry
    for job, status in ((alive, "processing"), (fresh_pending, "pending"), (theirs, "processing")):
        job.refresh_from_db()
        assert job.status == status
    audit = AuditLog.objects.get(user_action="Cleaned 2 stuck import job(s)")
    assert audit.actor == owner and audit.owner == owner
    assert sorted(audit.metadata["job_ids"]) == sorted([str(silent.pk), str(old_pending.pk)])


def test_cleanup_stuck_with_nothing_stuck(api):
    body = api.post(CLEANUP_STUCK).json()

    assert (body["message"], body["cleaned"], body["stuck_jobs"]) == ("Cleaned 0 stuck jobs", 0, [])


# --- jobs/{id}/force-retry -----------------------------------------------------------------------


def test_force_retry_puts_a_failed_job_back_in_the_queue(api, owner, tmp_path):
    job = run_now(pending_job(owner, tmp_path, "email\nbad\n"))
    assert job.status == ImportStatus.FAILED

    response = api.post(force_retry_url(job))

    assert response.status_code == 200
    assert response.json() == {"message": "Job retry initiated", "job_id": str(job.pk), "retry_count": 1}
    job.refresh_from_db()
    assert (job.status, job.retry_count, job.error_message, job.finished_at) == ("pending", 1, "", None)
    assert queued_job_ids()[-1] == str(job.pk)
    audit = AuditLog.objects.filter(entity_id=str(job.pk)).latest("id")
    assert audit.actor == owner and audit.after == {"status": "pending", "retry_count": 1}


def test_force_retry_resumes_a_stuck_job_from_its_checkpoint(api, owner, tmp_path, settings):
    settings.IMPORT_CHUNK_ROWS = 2
    content = "email\n" + "".join(f"p{i}@x.io\n" for i in range(6))
    job = pending_job(owner, tmp_path, content)
    from imports import pipeline

    token = pipeline.import_claim(job_id=job.pk)

    class Died(BaseException):
        """A killed worker: nothing in the run sees it."""

    def die(rows, offset):
        raise Died

    with pytest.raises(Died):
        pipeline.import_run(job_id=job.pk, token=token, on_chunk=die)
    stuck(job)

    response = api.post(force_retry_url(job))

    assert response.status_code == 200
    job = run_now(ImportJob.objects.get(pk=job.pk))
    assert (job.status, job.processed_rows, job.created, job.retry_count) == ("completed", 6, 6, 1)
    assert Subscriber.objects.count() == 6


def test_force_retry_of_a_job_that_is_not_failed_is_a_conflict(api, owner, tmp_path):
    job = pending_job(owner, tmp_path)

    response = api.post(force_retry_url(job))

    assert response.status_code == 409
    assert response.json()["detail"] == f"Job {job.pk} is pending; only failed or stuck jobs can be retried"
    job.refresh_from_db()
    assert (job.status, job.retry_count) == ("pending", 0)


def test_force_retry_of_a_completed_job_is_a_conflict(api, owner, tmp_path):
    job = run_now(pending_job(owner, tmp_path))

    assert api.post(force_retry_url(job)).status_code == 409


def test_force_retry_when_the_file_is_gone_is_a_conflict(api, owner, tmp_path):
    job = run_now(pending_job(owner, tmp_path, "email\nbad\n"))
    Path(job.file_path).unlink()

    response = api.post(force_retry_url(job))

    assert response.status_code == 409
    assert "its file is no longer kept" in response.json()["detail"]
    assert response.json()["field"] == "file"
    job.refresh_from_db()
    assert (job.status, job.retry_count) == ("failed", 0)


def test_force_retry_of_an_unknown_job_is_404(api):
    response = api.post("/api/v1/subscribers/jobs/00000000-0000-0000-0000-000000000000/force-retry")

    assert response.status_code == 404


# --- jobs/clear-all ------------------------------------------------------------------------------


def test_clear_all_deletes_finished_job_records_and_keeps_subscribers(api, owner, outsider, tmp_path):
    done = run_now(pending_job(owner, tmp_path, name="a.csv"))
    bad = run_now(pending_job(owner, tmp_path, "email\nbad\n", name="b.csv"))
    bad_path = Path(bad.file_path)
    waiting = pending_job(owner, tmp_path, "email\nz@x.io\n", name="c.csv")
    theirs = run_now(pending_job(outsider, tmp_path, "email\nq@x.io\n", name="d.csv"))

    response = api.delete(CLEAR_ALL)

    assert response.status_code == 200
    assert response.json() == {"message": "Cleared 2 old jobs", "deleted_count": 2}
    assert set(ImportJob.objects.values_list("pk", flat=True)) == {waiting.pk, theirs.pk}
    assert Subscriber.objects.filter(list__owner=owner).count() == 2  # subscribers stay
    assert not bad_path.exists()
    audit = AuditLog.objects.get(user_action="Cleared 2 finished job record(s)")
    assert audit.actor == owner and sorted(audit.metadata["job_ids"]) == sorted([str(done.pk), str(bad.pk)])


# --- upload-queue --------------------------------------------------------------------------------


def test_upload_queue_status_counts_the_owners_jobs(api, owner, outsider, tmp_path):
    pending_job(owner, tmp_path, name="a.csv")
    stuck(pending_job(owner, tmp_path, "email\nz@x.io\n", name="b.csv"))
    run_now(pending_job(owner, tmp_path, "email\ny@x.io\n", name="c.csv"))
    run_now(pending_job(owner, tmp_path, "email\nbad\n", name="d.csv"))
    pending_job(outsider, tmp_path, name="e.csv")

    response = api.get(QUEUE_STATUS)

    assert response.status_code == 200
    assert response.json() == {"queued": 1, "processing": 1, "completed": 1, "failed": 1, "cancelled": 0, "stuck": 1}


@pytest.mark.parametrize("url", [QUEUE_RETRY, MANUAL_RETRY])
def test_queue_retry_retries_failed_jobs_with_files_and_requeues_stuck_ones(api, owner, tmp_path, settings, url):
    retryable = run_now(pending_job(owner, tmp_path, "email\nbad\n", name="a.csv"))
    gone = run_now(pending_job(owner, tmp_path, "email\nworse\n", name="b.csv"))
    Path(gone.file_path).unlink()
    silent = stuck(pending_job(owner, tmp_path, "email\nz@x.io\n", name="c.csv"))

    response = api.post(url)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["timestamp"]
    assert body["retried"] == [str(retryable.pk)]
    assert body["requeued"] == [str(silent.pk)]
    assert [s["job_id"] for s in body["skipped"]] == [str(gone.pk)]
    assert "no longer kept" in body["skipped"][0]["reason"]
    assert body["message"] == "Retried 1 failed job(s), requeued 1 stuck job(s)"
    for job, status, retries in ((retryable, "pending", 1), (gone, "failed", 0), (silent, "pending", 1)):
        job.refresh_from_db()
        assert (job.status, job.retry_count) == (status, retries)
