"""/ws/jobs/<id>/: a WebSocket client follows an import run by a real qcluster worker."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from imports.tests.helpers import import_file
from inboxerr.progress import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, JobProgressConsumer
from inboxerr.tests.processes import kill_group, start_qcluster

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(user, job_id: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(JobProgressConsumer.as_asgi(), f"/ws/jobs/{job_id}/")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"args": (), "kwargs": {"job_id": job_id}}
    return communicator


async def _follow(communicator: WebsocketCommunicator) -> list[dict]:
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    messages = []
    while True:
        message = await communicator.receive_json_from(timeout=60)
        messages.append(message)
        if message["status"] not in ("pending", "processing", "stuck"):
            break
    await communicator.disconnect()
    return messages


@pytest.mark.slow
def test_websocket_client_receives_progress_of_an_import_run_by_a_real_worker(owner, tmp_path, settings):
    settings.IMPORT_DIR = tmp_path / "imports"
    settings.PROGRESS_POLL_SECONDS = 0.2
    csv = tmp_path / "big.csv"
    csv.write_text("email,name\n" + "".join(f"p{i}@x.io,P{i}\n" for i in range(40_000)))
    job = import_file(owner, csv)
    worker = start_qcluster(Q_WORKERS="1", IMPORT_DIR=str(settings.IMPORT_DIR), IMPORT_CHUNK_ROWS="2000")
    try:
        messages = async_to_sync(_follow)(_communicator(owner, str(job.pk)))
    finally:
        kill_group(worker)
    assert messages[-1]["status"] == "completed" and messages[-1]["kind"] == "import"
    assert messages[-1]["progress"] == 100.0
    progress = [m["progress"] for m in messages]
    assert progress == sorted(progress) and len(messages) >= 3  # intermediate progress was pushed


def test_outsider_and_anonymous_are_refused(owner, outsider, tmp_path, settings):
    from django.contrib.auth.models import AnonymousUser

    settings.IMPORT_DIR = tmp_path / "imports"
    csv = tmp_path / "small.csv"
    csv.write_text("email\na@x.io\n")
    job = import_file(owner, csv)

    async def attempt(user):
        communicator = _communicator(user, str(job.pk))
        connected, code = await communicator.connect(timeout=10)
        return connected, code

    assert async_to_sync(attempt)(outsider) == (False, CLOSE_NOT_FOUND)
    assert async_to_sync(attempt)(AnonymousUser()) == (False, CLOSE_UNAUTHENTICATED)
