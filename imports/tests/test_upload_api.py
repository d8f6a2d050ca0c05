"""POST /api/v1/imports/csv: the multipart upload streams to IMPORT_DIR, hashed on the way, and
answers 202 with the job; every bad input is a 400 naming the field, with nothing left behind."""

import json
from pathlib import Path

import pytest

from audit.models import AuditLog
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import run_now
from imports.tests.support import IMPORT_CSV, queued_job_ids, sha256, stored_files, upload
from subscribers.models import Subscriber, SubscriberList

pytestmark = pytest.mark.django_db(transaction=True)

CSV = b"email,name,plan\nann@x.io,Ann,pro\nbo@x.io,Bo,free\n"


def assert_nothing_stored():
    assert ImportJob.objects.count() == 0
    assert stored_files() == []


def test_upload_answers_202_with_the_job_and_stores_the_file(api, owner, settings):
    response = upload(api, CSV, name="people.csv")

    assert response.status_code == 202, response.content
    body = response.json()
    job = ImportJob.objects.get()
    assert body["import_id"] == str(job.pk) == body["job_id"]
    assert body["status"] == "pending"
    assert body["sha256"] == sha256(CSV) == job.sha256
    assert body["size_bytes"] == len(CSV) == job.size_bytes
    assert body["list_name"] == "News" and body["filename"] == "people.csv"
    assert response["Location"] == f"/api/v1/imports/{job.pk}"
    path = Path(job.file_path)
    assert path.parent == Path(settings.IMPORT_DIR) and path.read_bytes() == CSV
    assert stored_files() == [path]
    assert job.owner == owner and job.list.name == "News" and job.list.owner == owner
    assert job.options["format"]["delimiter"] == "," and job.options["format"]["encoding"] == "utf-8"
    assert queued_job_ids() == [str(job.pk)]
    audit = AuditLog.objects.get(entity_type="import_job", entity_id=str(job.pk))
    assert audit.action == "import" and audit.actor == owner and audit.after["sha256"] == job.sha256


def test_running_an_uploaded_file_creates_its_subscribers(api):
    response = upload(api, CSV)
    job = run_now(ImportJob.objects.get(pk=response.json()["import_id"]))

    assert job.status == ImportStatus.COMPLETED
    assert (job.processed_rows, job.created, job.invalid) == (2, 2, 0)
    ann = Subscriber.objects.get(key="ann@x.io")
    assert ann.name == "Ann" and ann.custom_fields == {"plan": "pro"} and ann.import_job_id == job.pk
    assert SubscriberList.objects.get(name="News").subscriber_count == 2
    assert stored_files() == []  # deleted on success, only the SHA-256 kept
    assert job.sha256 == sha256(CSV)
    trail = list(AuditLog.objects.filter(entity_type="import_job", entity_id=str(job.pk)).order_by("id"))
    assert [(a.action, (a.after or {}).get("status")) for a in trail] == [
        ("import", "pending"), ("update", "processing"), ("import", "completed"),
    ]
    assert trail[-1].after["created"] == 2 and trail[-1].owner_id == job.owner_id


def test_upload_of_an_open_file_streams_in_chunks_with_the_right_hash(api, tmp_path):
    # ~300 KB: several 64 KiB upload chunks, with multi-byte characters across their edges.
    content = ("email,name\n" + "".join(f"p{i}@x.io,Zoë Ærø {i}\n" for i in range(12000))).encode()
    path = tmp_path / "big.csv"
    path.write_bytes(content)

    with open(path, "rb") as handle:
        response = api.post(IMPORT_CSV, {"file": handle, "list_name": "Big"}, format="multipart")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["sha256"] == sha256(content) and body["size_bytes"] == len(content)
    job = ImportJob.objects.get()
    assert job.options["format"]["encoding"] == "utf-8"
    assert Path(job.file_path).read_bytes() == content
    job = run_now(job)
    assert (job.status, job.created) == ("completed", 12000)
    assert Subscriber.objects.get(key="p11999@x.io").name == "Zoë Ærø 11999"


def test_same_file_to_the_same_list_is_refused_with_the_existing_job(api):
    first = upload(api, CSV).json()["import_id"]

    response = upload(api, CSV, name="again.csv")

    assert response.status_code == 409
    body = response.json()
    assert body["import_id"] == first and body["status"] == "pending" and body["field"] == "file"
    assert "already imported" in body["detail"] and "force=true" in body["detail"]
    assert ImportJob.objects.count() == 1
    assert len(stored_files()) == 1  # the second copy was not kept


def test_same_file_refused_after_its_job_completed(api):
    run_now(ImportJob.objects.get(pk=upload(api, CSV).json()["import_id"]))

    response = upload(api, CSV)

    assert response.status_code == 409
    assert response.json()["status"] == "completed"
    assert stored_files() == []


def test_same_file_to_another_list_is_accepted(api):
    upload(api, CSV)

    response = upload(api, CSV, list_name="Other")

    assert response.status_code == 202
    assert ImportJob.objects.count() == 2


def test_force_imports_the_same_file_again(api):
    first = upload(api, CSV).json()["import_id"]

    response = upload(api, CSV, force="true")

    assert response.status_code == 202
    assert response.json()["import_id"] != first
    assert ImportJob.objects.filter(sha256=sha256(CSV)).count() == 2


def test_upload_over_the_size_limit_is_refused_with_nothing_stored(api, settings):
    settings.IMPORT_MAX_BYTES = 40

    response = upload(api, CSV)

    assert response.status_code == 413
    assert response.json()["field"] == "file"
    assert response.json()["detail"] == "file: larger than the limit of 40 bytes"
    assert_nothing_stored()
    assert not SubscriberList.objects.exists()


def test_upload_whose_declared_length_is_over_the_limit_is_refused_before_reading(api, settings):
    settings.IMPORT_MAX_BYTES = 1000
    big = b"email\n" + b"someone@example.com\n" * 5000  # ~100 KB

    response = upload(api, big)

    assert response.status_code == 413
    assert response.json()["detail"].startswith("file:")
    assert_nothing_stored()


def test_upload_without_a_file_names_the_file_field(api):
    response = upload(api, None)

    assert response.status_code == 400
    assert response.json()["detail"] == "file: a CSV file is required (multipart field 'file')"
    assert_nothing_stored()


def test_upload_with_the_file_under_another_field_is_refused(api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api.post(
        IMPORT_CSV, {"upload": SimpleUploadedFile("a.csv", CSV), "list_name": "News"}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["field"] == "file"
    assert_nothing_stored()


def test_upload_without_a_list_name_names_it_and_removes_the_file(api):
    response = upload(api, CSV, list_name=None)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("list_name:")
    assert_nothing_stored()


def test_mapping_that_is_not_json_is_refused(api):
    response = upload(api, CSV, mapping="{email: nope")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("mapping:")
    assert_nothing_stored()
    assert not SubscriberList.objects.exists()


def test_mapping_that_is_not_an_object_is_refused(api):
    response = upload(api, CSV, mapping=json.dumps(["email"]))

    assert response.status_code == 400
    assert response.json()["detail"] == "mapping: mapping must be a JSON object of column name -> field name"
    assert response.json()["field"] == "mapping"
    assert_nothing_stored()
    assert not SubscriberList.objects.exists()


def test_mapping_naming_an_unknown_column_is_refused(api):
    response = upload(api, CSV, mapping=json.dumps({"Mail": "email"}))

    assert response.status_code == 400
    assert response.json()["detail"] == "mapping: no column named 'Mail' in the file"
    assert response.json()["field"] == "mapping"
    assert_nothing_stored()
    assert not SubscriberList.objects.exists()


def test_mapping_picks_the_key_column_and_sends_others_to_fields(api):
    content = b"Contact,Who,Tier,Notes\nann@x.io,Ann,gold,call her\n"

    response = upload(api, content, mapping=json.dumps(
        {"Contact": "email", "Who": "name", "Tier": "custom:plan", "Notes": "ignore"}))

    assert response.status_code == 202, response.content
    run_now(ImportJob.objects.get())
    ann = Subscriber.objects.get()
    assert (ann.email, ann.name, ann.custom_fields) == ("ann@x.io", "Ann", {"plan": "gold"})


def test_file_without_an_email_column_lists_the_columns_found(api):
    response = upload(api, b"full name,city\nAnn,Oslo\n")

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("file: no email column; found columns: full name, city")
    assert response.json()["field"] == "file"
    assert_nothing_stored()
    assert not SubscriberList.objects.exists()


def test_empty_file_is_refused(api):
    response = upload(api, b"")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("file:")
    assert "empty" in response.json()["detail"]
    assert_nothing_stored()


def test_header_only_file_is_refused(api):
    response = upload(api, b"email,name\n")

    assert response.status_code == 400
    assert response.json()["detail"] == "file: the file has a header but no data rows"
    assert_nothing_stored()
    assert not SubscriberList.objects.exists()


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "file: This is not a text file; upload a CSV file"),
        (b'[{"email": "ann@x.io"}]', "file: This file is JSON, not CSV; export it as CSV with a header row"),
    ],
    ids=["png", "json"],
)
def test_a_file_that_is_not_csv_is_refused_by_name(api, content, detail):
    response = upload(api, content)

    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert_nothing_stored()


def test_unknown_key_field_is_refused(api):
    response = upload(api, CSV, key_field="fax")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("key_field:")
    assert_nothing_stored()


def test_phone_keyed_list_imports_by_phone(api, settings):
    settings.PHONE_DEFAULT_REGION = "US"
    content = b"mobile,name\n(415) 555-2671,Ann\n+14155552671,Ann again\n+1 212 555 0100,Bo\nnot a phone,X\n"

    response = upload(api, content, list_name="Texts", key_field="phone")

    assert response.status_code == 202, response.content
    subscriber_list = SubscriberList.objects.get(name="Texts")
    assert subscriber_list.key_field == "phone"
    job = run_now(ImportJob.objects.get())
    assert (job.processed_rows, job.created, job.duplicates, job.invalid) == (4, 2, 1, 1)
    assert job.status == ImportStatus.PARTIALLY_COMPLETED
    assert sorted(Subscriber.objects.values_list("key", flat=True)) == ["+12125550100", "+14155552671"]
    assert Subscriber.objects.get(key="+14155552671").name == "Ann"
    error = job.row_errors.get()
    assert error.row == 5 and error.reason.startswith("phone:")


def test_phone_keyed_list_without_a_phone_column_is_refused(api):
    response = upload(api, CSV, list_name="Texts", key_field="phone")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("file: no phone column; found columns: email, name, plan")
    assert_nothing_stored()


def test_key_field_that_contradicts_the_existing_list_is_refused(api):
    upload(api, CSV)

    response = upload(api, b"email,mobile\nzed@x.io,+14155552671\n", key_field="phone")

    assert response.status_code == 400
    assert response.json()["detail"] == "List 'News' is keyed on email, not phone"
    assert response.json()["field"] == "key_field"
    assert ImportJob.objects.count() == 1 and len(stored_files()) == 1


def test_update_existing_false_is_kept_on_the_job(api):
    response = upload(api, CSV, update_existing="false")

    assert response.status_code == 202
    assert ImportJob.objects.get().options["update_existing"] is False
