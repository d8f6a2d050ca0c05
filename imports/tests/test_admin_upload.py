"""The admin import page: upload, preview with the detected mapping, change it, start, follow."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import run_now
from subscribers.models import Subscriber
from subscribers.tests.factories import SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def _upload(client, list_pk: int, content: bytes, name: str = "people.csv"):
    return client.post(
        f"/admin/imports/importjob/upload/?list={list_pk}", {"file": SimpleUploadedFile(name, content, "text/csv")}
    )


def test_upload_shows_a_preview_with_the_detected_mapping(owner_client, owner):
    lst = SubscriberListFactory(owner=owner, name="News")
    response = _upload(owner_client, lst.pk, "E-mail;Vorname;Tier\r\na@x.io;Änne;gold\r\n".encode("utf-8-sig"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "encoding utf-8-sig" in html and "<code>;</code>" in html
    assert '<option value="email" selected>' in html
    assert '<option value="custom:tier" selected>' in html
    assert "Änne" in html
    assert not ImportJob.objects.exists()


def test_changed_mapping_is_used_by_the_import(owner_client, owner):
    lst = SubscriberListFactory(owner=owner, name="News")
    response = _upload(owner_client, lst.pk, b"mail,who,tier\na@x.io,Ann,gold\n")
    token = response.context["token"]
    response = owner_client.post(
        f"/admin/imports/importjob/upload/?list={lst.pk}&confirm=1",
        {"token": token, "col_0": "email", "col_1": "name", "col_2": "ignore", "update_existing": "on"},
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/admin/imports/importjob/{job.pk}/change/")
    assert job.options["mapping"] == {"mail": "email", "who": "name", "tier": "ignore"}
    run_now(job)
    subscriber = Subscriber.objects.get(list=lst)
    assert (subscriber.email, subscriber.name, subscriber.custom_fields) == ("a@x.io", "Ann", {})
    page = owner_client.get(f"/admin/imports/importjob/{job.pk}/change/")
    assert page.status_code == 200 and b'id="import-progress"' in page.content


def test_upload_of_an_empty_file_is_refused_on_the_form(owner_client, owner):
    lst = SubscriberListFactory(owner=owner, name="News")
    response = _upload(owner_client, lst.pk, b"")
    assert response.status_code == 200
    assert "The file is empty" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_outsider_cannot_upload_into_the_owners_list(client, outsider, owner):
    lst = SubscriberListFactory(owner=owner, name="News")
    client.force_login(outsider)
    assert _upload(client, lst.pk, b"email\na@x.io\n").status_code == 404


def test_cancel_action_on_a_pending_job(owner_client, owner, tmp_path):
    from imports.tests.helpers import import_file, write

    job = import_file(owner, write(tmp_path, "email\na@x.io\n"))
    owner_client.post("/admin/imports/importjob/", {"action": "cancel_jobs", "_selected_action": [str(job.pk)]})
    job.refresh_from_db()
    assert job.status == ImportStatus.CANCELLED
