"""Who may call the import routes: an anonymous caller gets 401, a user without the import
permissions 403, and another operator sees none of the owner's jobs (404 on a job, nothing in a
list, and nothing of the owner's touched by the bulk routes)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import run_now
from imports.tests.support import (
    BACKGROUND_UPLOAD, CLEANUP_STUCK, CLEAR_ALL, IMPORT_CSV, IMPORTS, JOBS_STATUS, MANUAL_RETRY, PERMISSION_DENIED,
    QUEUE_RETRY, QUEUE_STATUS, force_retry_url, job_url, pending_job, set_state, stored_files,
)
from subscribers.models import Subscriber, SubscriberList

pytestmark = pytest.mark.django_db(transaction=True)

JOB_ROUTES = [
    ("get", ""),
    ("get", "/contacts"),
    ("get", "/errors"),
    ("post", "/cancel"),
    ("post", "force-retry"),
]
COLLECTION_ROUTES = [
    ("get", IMPORTS),
    ("post", IMPORT_CSV),
    ("post", BACKGROUND_UPLOAD),
    ("get", JOBS_STATUS),
    ("post", CLEANUP_STUCK),
    ("delete", CLEAR_ALL),
    ("get", QUEUE_STATUS),
    ("post", QUEUE_RETRY),
    ("post", MANUAL_RETRY),
]


@pytest.fixture
def owners_jobs(owner, tmp_path, settings):
    """One job of the owner's in each state a route could act on."""
    done = run_now(pending_job(owner, tmp_path, "email,name\na@x.io,Ann\nbad,Bad\n", name="done.csv"))
    failed = run_now(pending_job(owner, tmp_path, "email\nnope\n", name="failed.csv"))
    waiting = pending_job(owner, tmp_path, "email\nw@x.io\n", name="waiting.csv")
    silent = set_state(
        pending_job(owner, tmp_path, "email\ns@x.io\n", name="silent.csv"),
        status=ImportStatus.PROCESSING,
        heartbeat_at=timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 60),
    )
    return {"done": done, "failed": failed, "waiting": waiting, "silent": silent}


def snapshot() -> list[tuple]:
    return sorted(ImportJob.objects.values_list("pk", "status", "retry_count", "file_path", "owner_id"))


def call(client, method: str, url: str):
    if url == IMPORT_CSV:
        return client.post(url, {"file": SimpleUploadedFile("x.csv", b"email\nz@x.io\n"), "list_name": "News"},
                           format="multipart")
    if url == BACKGROUND_UPLOAD:
        return client.post(url, {"list_name": "News", "subscribers": [{"email": "z@x.io"}]}, format="json")
    return getattr(client, method)(url)


def route(job, suffix: str) -> str:
    return force_retry_url(job) if suffix == "force-retry" else job_url(job, suffix)


@pytest.mark.parametrize(("method", "suffix"), JOB_ROUTES)
def test_outsider_gets_404_on_every_job_route(outsider_api, owners_jobs, method, suffix):
    before = snapshot()
    job = owners_jobs["failed"] if suffix == "force-retry" else owners_jobs["waiting"]

    response = getattr(outsider_api, method)(route(job, suffix))

    assert response.status_code == 404
    assert response.json()["detail"] == f"Import job '{job.pk}' not found"
    assert snapshot() == before


@pytest.mark.parametrize(("method", "suffix"), JOB_ROUTES)
def test_anonymous_caller_gets_401_on_every_job_route(anon_api, owners_jobs, method, suffix):
    before = snapshot()

    response = getattr(anon_api, method)(route(owners_jobs["failed"], suffix))

    assert response.status_code == 401
    assert snapshot() == before


@pytest.mark.parametrize(("method", "suffix"), JOB_ROUTES)
def test_user_without_permissions_gets_403_on_every_job_route(no_perms_api, owners_jobs, method, suffix):
    before = snapshot()

    response = getattr(no_perms_api, method)(route(owners_jobs["failed"], suffix))

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
    assert snapshot() == before


@pytest.mark.parametrize(("method", "url"), COLLECTION_ROUTES)
def test_anonymous_caller_gets_401_on_every_collection_route(anon_api, owners_jobs, method, url):
    before, files = snapshot(), stored_files()

    response = call(anon_api, method, url)

    assert response.status_code == 401
    assert snapshot() == before and stored_files() == files


@pytest.mark.parametrize(("method", "url"), COLLECTION_ROUTES)
def test_user_without_permissions_gets_403_on_every_collection_route(no_perms_api, owners_jobs, method, url):
    before, files = snapshot(), stored_files()

    response = call(no_perms_api, method, url)

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
    assert snapshot() == before and stored_files() == files
    assert not SubscriberList.objects.exclude(owner=owners_jobs["done"].owner).exists()


def test_outsider_sees_none_of_the_owners_jobs_in_lists(outsider_api, outsider, owners_jobs, tmp_path):
    own = pending_job(outsider, tmp_path, "email\nmine@x.io\n", name="mine.csv")

    imports = outsider_api.get(IMPORTS).json()
    status = outsider_api.get(JOBS_STATUS).json()
    queue = outsider_api.get(QUEUE_STATUS).json()

    assert [row["import_id"] for row in imports["results"]] == [str(own.pk)]
    assert [row["job_id"] for row in status["jobs"]] == [str(own.pk)]
    assert queue == {"queued": 1, "processing": 0, "completed": 0, "failed": 0, "cancelled": 0, "stuck": 0}


def test_outsider_cleanup_stuck_leaves_the_owners_jobs_alone(outsider_api, owners_jobs):
    before = snapshot()

    body = outsider_api.post(CLEANUP_STUCK).json()

    assert (body["cleaned"], body["stuck_jobs"]) == (0, [])
    assert snapshot() == before


def test_outsider_clear_all_leaves_the_owners_jobs_alone(outsider_api, owners_jobs):
    before = snapshot()

    body = outsider_api.delete(CLEAR_ALL).json()

    assert body == {"message": "Cleared 0 old jobs", "deleted_count": 0}
    assert snapshot() == before


@pytest.mark.parametrize("url", [QUEUE_RETRY, MANUAL_RETRY])
def test_outsider_queue_retry_leaves_the_owners_jobs_alone(outsider_api, owners_jobs, url):
    before = snapshot()

    body = outsider_api.post(url).json()

    assert (body["retried"], body["requeued"], body["skipped"]) == ([], [], [])
    assert snapshot() == before
    assert str(owners_jobs["silent"].pk) not in str(body)


def test_outsider_upload_to_a_list_of_the_same_name_goes_to_their_own_list(outsider_api, outsider, owner, owners_jobs):
    response = call(outsider_api, "post", IMPORT_CSV)

    assert response.status_code == 202
    job = ImportJob.objects.get(pk=response.json()["import_id"])
    assert job.owner == outsider and job.list.owner == outsider
    run_now(job)
    assert Subscriber.objects.get(key="z@x.io").list.owner == outsider
    assert SubscriberList.objects.get(owner=owner, name="News").subscriber_count == 1


def test_outsider_background_upload_goes_to_their_own_list(outsider_api, outsider, owners_jobs):
    response = call(outsider_api, "post", BACKGROUND_UPLOAD)

    assert response.status_code == 202
    job = ImportJob.objects.get(pk=response.json()["import_id"])
    assert job.owner == outsider and job.list.owner == outsider


def test_superuser_sees_and_acts_on_every_owners_jobs(superuser_api, owners_jobs):
    assert superuser_api.get(IMPORTS).json()["count"] == 4
    assert superuser_api.get(job_url(owners_jobs["done"])).status_code == 200

    response = superuser_api.post(job_url(owners_jobs["waiting"], "/cancel"))

    assert response.status_code == 200
    owners_jobs["waiting"].refresh_from_db()
    assert owners_jobs["waiting"].status == ImportStatus.CANCELLED
    assert not Path(owners_jobs["waiting"].file_path or "/nonexistent").exists()
