"""Shared pieces of the import API and pipeline tests: URLs, an upload helper, jobs in a given
state without running them, and a look at what is queued for the workers."""

import csv
import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import import_file, write

IMPORTS = "/api/v1/imports/"
IMPORT_CSV = f"{IMPORTS}csv"
SUBS = "/api/v1/subscribers/"
BACKGROUND_UPLOAD = f"{SUBS}background-upload"
JOBS_STATUS = f"{SUBS}jobs/status"
CLEANUP_STUCK = f"{SUBS}jobs/cleanup-stuck"
CLEAR_ALL = f"{SUBS}jobs/clear-all"
QUEUE_STATUS = f"{SUBS}upload-queue/status"
QUEUE_RETRY = f"{SUBS}upload-queue/retry"
MANUAL_RETRY = f"{SUBS}recovery/manual-retry"

PERMISSION_DENIED = "You do not have permission to perform this action."


def job_url(job, suffix: str = "") -> str:
    return f"{IMPORTS}{job.pk}{suffix}"


def force_retry_url(job) -> str:
    return f"{SUBS}jobs/{job.pk}/force-retry"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload(client, content: bytes | str, *, name: str = "people.csv", list_name: str | None = "News", **fields):
    """POST /api/v1/imports/csv as multipart, the file under the field `file`."""
    data = {k: v for k, v in fields.items() if v is not None}
    if content is not None:
        raw = content.encode() if isinstance(content, str) else content
        data["file"] = SimpleUploadedFile(name, raw, content_type="text/csv")
    if list_name is not None:
        data["list_name"] = list_name
    return client.post(IMPORT_CSV, data, format="multipart")


def stored_files() -> list[Path]:
    directory = Path(settings.IMPORT_DIR)
    return sorted(directory.iterdir()) if directory.exists() else []


def queued_job_ids() -> list[str]:
    """Job ids of the run_import tasks waiting in the ORM broker."""
    ids = []
    for item in OrmQ.objects.all():
        task = item.task
        assert task["func"] == "imports.tasks.run_import", task
        ids.append(task["args"][0])
    return ids


def queued_runs(job: ImportJob, *, waiting: bool = False) -> int:
    """Runs of the job in the broker; with `waiting`, only those not yet handed out (a killed
    worker's task stays there, locked)."""
    tasks = OrmQ.objects.filter(lock__lte=timezone.now()) if waiting else OrmQ.objects.all()
    return sum(1 for q in tasks if q.task["func"] == "imports.tasks.run_import" and q.task["args"][0] == str(job.pk))


def pending_job(owner, tmp_path, content: str = "email,name\na@x.io,Ann\nb@x.io,Bo\n", *, name: str = "p.csv",
                list_name: str = "News", **options) -> ImportJob:
    return import_file(owner, write(tmp_path, content, name), list_name=list_name, **options)


def set_state(job: ImportJob, **fields) -> ImportJob:
    ImportJob.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def stuck(job: ImportJob, *, seconds: int = 3600) -> ImportJob:
    """A job whose worker went quiet: processing, last heartbeat long ago."""
    return set_state(job, status=ImportStatus.PROCESSING, heartbeat_at=timezone.now() - timedelta(seconds=seconds),
                     started_at=timezone.now() - timedelta(seconds=seconds + 10))


def failed(job: ImportJob, **fields) -> ImportJob:
    return set_state(job, status=ImportStatus.FAILED, finished_at=timezone.now(), error_message="boom", **fields)


def read_csv(response) -> list[list[str]]:
    """The rows of the row-error report, which starts with a UTF-8 BOM for Excel."""
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf"), raw[:20]
    body = raw[3:].decode()
    return list(csv.reader(io.StringIO(body)))


def poison_file(path: Path) -> Path:
    """250 rows; row 151 (in the second chunk of 100) is the one that crashes the worker."""
    rows = [f"user{i}@example.com,Name {i}" for i in range(250)]
    rows[149] = "poison@example.com,Poison"
    path.write_text("email,name\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def refuse_poison():
    """A constraint the database enforces on new rows (as a DBA's constraint or trigger would),
    refusing the poison row's name: the chunk holding it fails with an IntegrityError."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE subscribers_subscriber ADD CONSTRAINT no_poison CHECK (name <> 'Poison') NOT VALID")
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE subscribers_subscriber DROP CONSTRAINT no_poison")
