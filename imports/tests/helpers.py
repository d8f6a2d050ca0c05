from pathlib import Path

from imports import pipeline
from imports.models import ImportJob
from imports.services import StoredFile, import_create, store_local_file
from inboxerr.actors import Actor


def write(tmp_path: Path, content: str | bytes, name: str = "upload.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def run_now(job: ImportJob) -> ImportJob:
    """What the worker task does, in this process."""
    token = pipeline.import_claim(job_id=job.pk)
    assert token is not None
    return pipeline.import_run(job_id=job.pk, token=token)


def import_file(owner, path: Path, list_name: str = "News", **options) -> ImportJob:
    stored: StoredFile = store_local_file(path)
    return import_create(actor=Actor(user=owner, source="command"), owner=owner, list_name=list_name, stored=stored, **options)
