"""Text PostgreSQL cannot store (a NUL character; a lone surrogate, which JSON can spell as
\\ud800) in what an import reads: the row is invalid with a reason naming its column or field and
kept in the row-error report with U+FFFD in place of the character; the job goes on and never
crashes its worker. A NUL in the header refuses the file before a job exists."""

import json
import os
from pathlib import Path

import pytest

from imports import services
from imports.models import ImportJob, ImportRowError, ImportStatus
from imports.tests.helpers import import_file, run_now, write
from imports.tests.support import IMPORT_CSV, job_url, read_csv, stored_files, upload
from inboxerr.actors import Actor
from inboxerr.errors import InvalidInput
from subscribers.models import Subscriber, SubscriberList
from subscribers.services import subscribers_bulk_upsert

pytestmark = pytest.mark.django_db(transaction=True)

FFFD = "\ufffd"


def padded(lines: list[str], rows: int = 40) -> str:
    """The given rows after enough plain ones that a NUL or two is a row's defect, not a sign of
    a binary file (more than 1% NUL bytes)."""
    plain = [f"plain{i}@x.io,Plain,free" for i in range(rows)]
    return "\n".join(["email,first_name,plan", *plain, *lines]) + "\n"


def errors(job: ImportJob) -> dict[int, tuple[str, dict]]:
    return {e.row: (e.reason, e.values) for e in ImportRowError.objects.filter(job=job)}


def test_a_nul_in_any_column_makes_its_row_invalid_naming_the_column(owner, tmp_path):
    content = padded(["ann@x.io,An\x00n,pro", "bo@x.io,Bo,pl\x00an", "c\x00y@x.io,Cy,pro", "di@x.io,Di,gold"])

    job = run_now(import_file(owner, write(tmp_path, content)))

    assert (job.status, job.processed_rows, job.created, job.invalid) == (ImportStatus.PARTIALLY_COMPLETED, 44, 41, 3)
    assert errors(job) == {
        42: ("NUL character in column 'first_name'", {"email": "ann@x.io", "first_name": f"An{FFFD}n", "plan": "pro"}),
        43: ("NUL character in column 'plan'", {"email": "bo@x.io", "first_name": "Bo", "plan": f"pl{FFFD}an"}),
        44: ("NUL character in column 'email'", {"email": f"c{FFFD}y@x.io", "first_name": "Cy", "plan": "pro"}),
    }
    assert not Subscriber.objects.filter(key__in=["ann@x.io", "bo@x.io"]).exists()
    assert Subscriber.objects.get(key="di@x.io").custom_fields == {"plan": "gold"}
    assert SubscriberList.objects.get(name="News").subscriber_count == 41


def test_a_nul_row_is_in_the_downloaded_row_error_report(api, owner, tmp_path):
    job = run_now(import_file(owner, write(tmp_path, padded(["ann@x.io,An\x00n,pro"]))))

    rows = read_csv(api.get(job_url(job, "/errors")))

    assert rows == [["row", "kind", "column", "reason", "email", "first_name", "plan"],
                    ["42", "error", "", "NUL character in column 'first_name'", "ann@x.io", f"An{FFFD}n", "pro"]]


def test_a_row_with_a_nul_and_too_many_fields_is_stored_with_its_extra_cell(owner, tmp_path):
    job = run_now(import_file(owner, write(tmp_path, padded(["ann@x.io,Ann,pro,ex\x00tra"]))))

    assert errors(job) == {42: ("has 4 fields but the header has 3",
                                {"email": "ann@x.io", "first_name": "Ann", "plan": "pro", "extra_4": f"ex{FFFD}tra"})}


def test_a_nul_past_the_first_64_kib_is_a_row_error_too(owner, tmp_path):
    """The file's head is sniffed for its format; a NUL far below it reaches only the rows."""
    plain = [f"user{i}@example.com,Name {i},plan{i % 3}" for i in range(3000)]
    content = "email,first_name,plan\n" + "\n".join(plain) + "\nlate@x.io,La\x00te,pro\n"
    assert content.index("\x00") > 64 * 1024

    job = run_now(import_file(owner, write(tmp_path, content)))

    assert (job.status, job.created, job.invalid) == (ImportStatus.PARTIALLY_COMPLETED, 3000, 1)
    assert errors(job) == {3002: ("NUL character in column 'first_name'",
                                  {"email": "late@x.io", "first_name": f"La{FFFD}te", "plan": "pro"})}


def test_a_nul_in_a_header_cell_refuses_the_file_before_a_job_exists(owner, tmp_path):
    content = padded([]).replace("first_name", "first\x00name", 1)

    with pytest.raises(InvalidInput) as refused:
        import_file(owner, write(tmp_path, content))

    assert refused.value.field == "file"
    assert refused.value.message == (
        f"file: The header row has a NUL character in column 2 ('first{FFFD}name'); "
        "remove it from the file and upload it again"
    )
    assert not ImportJob.objects.exists() and stored_files() == []


def test_a_nul_in_a_header_cell_is_a_400_naming_the_file_through_the_upload_api(api):
    response = upload(api, padded([]).replace("plan", "pl\x00an", 1))

    assert response.status_code == 400
    assert response.json()["field"] == "file"
    assert "The header row has a NUL character in column 3" in response.json()["detail"]
    assert not ImportJob.objects.exists()


def test_a_file_full_of_nul_bytes_is_still_not_a_text_file(api):
    utf16 = "email,name\r\nann@x.io,Ann\r\n".encode("utf-16")
    padded_nuls = b"email,name\r\n" + b"\x00" * 40 + b"\r\nann@x.io,Ann\r\n"

    response = api.post(IMPORT_CSV, {"file": _named(utf16, "people.csv"), "list_name": "News"}, format="multipart")

    assert response.status_code == 400
    assert response.json()["detail"] == ("file: This is not a text file the import reads (it is UTF-16 text): "
                                         "save it as CSV in UTF-8 and upload it again")
    response = api.post(IMPORT_CSV, {"file": _named(padded_nuls, "people.csv"), "list_name": "News"}, format="multipart")
    assert response.json()["detail"] == "file: This is not a text file; upload a CSV file"


def _named(raw: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile
    return SimpleUploadedFile(name, raw, content_type="text/csv")


def test_a_mapping_with_a_nul_is_refused_naming_the_mapping(owner, tmp_path):
    with pytest.raises(InvalidInput) as refused:
        import_file(owner, write(tmp_path, padded([])), mapping={"plan": "standard:pl\x00an"})

    assert refused.value.field == "mapping"
    assert refused.value.message == (
        "mapping: the entry for column 'plan' contains a NUL character, which cannot be stored"
    )
    assert not ImportJob.objects.exists()


def test_a_file_name_that_is_not_utf8_on_disk_is_kept_with_a_replacement_character(owner, tmp_path):
    path = tmp_path / os.fsdecode(b"caf\xe9.csv")  # the name the import command would be given
    path.write_text("email\nann@x.io\n")

    job = run_now(import_file(owner, path))

    assert job.filename == f"caf{FFFD}.csv"
    assert job.status == ImportStatus.COMPLETED


def test_a_list_name_that_cannot_be_stored_is_refused_naming_the_name(owner, tmp_path):
    with pytest.raises(InvalidInput) as refused:
        import_file(owner, write(tmp_path, padded([])), list_name=os.fsdecode(b"Caf\xe9"))

    assert refused.value.message == "name: contains a lone surrogate (invalid Unicode), which cannot be stored"
    assert not SubscriberList.objects.exists() and not ImportJob.objects.exists()


# --- JSON records: the background upload and the bulk API ----------------------------------------

UNSTORABLE_RECORDS = [
    {"email": "ann@x.io", "first_name": "An\x00n"},
    {"email": "bo@x.io", "plan": "gold\ud800"},
    {"email": "cy@x.io", "custom_fields": {"pl\x00an": "pro"}},
    {"email": "di@x.io", "ti\udc00er": "one"},
    {"email": "ed@x.io", "first_name": "Ed", "plan": "pro"},
]


def test_background_upload_records_that_cannot_be_stored_are_invalid_rows_naming_the_field(owner):
    job = services.import_create_from_records(
        actor=Actor(user=owner, source="api"), owner=owner, list_name="News", records=UNSTORABLE_RECORDS
    )

    job = run_now(job)

    assert (job.status, job.processed_rows, job.created, job.invalid) == (ImportStatus.PARTIALLY_COMPLETED, 5, 1, 4)
    assert errors(job) == {
        1: ("first_name: contains a NUL character, which cannot be stored",
            {"email": "ann@x.io", "first_name": f"An{FFFD}n"}),
        2: ("plan: contains a lone surrogate (invalid Unicode), which cannot be stored",
            {"email": "bo@x.io", "plan": f"gold{FFFD}"}),
        3: (f"custom_fields.pl{FFFD}an: the field name contains a NUL character, which cannot be stored",
            {"email": "cy@x.io", "custom_fields": "{'pl\\x00an': 'pro'}"}),  # a nested object as Python shows it
        4: (f"ti{FFFD}er: the field name contains a lone surrogate (invalid Unicode), which cannot be stored",
            {"email": "di@x.io", f"ti{FFFD}er": "one"}),
    }
    assert Subscriber.objects.get().custom_fields == {"plan": "pro"}


def test_the_background_upload_file_keeps_a_lone_surrogate_as_an_escape(owner, settings):
    job = services.import_create_from_records(
        actor=Actor(user=owner, source="api"), owner=owner, list_name="News", records=[UNSTORABLE_RECORDS[1]]
    )

    line = Path(job.file_path).read_bytes()

    assert line == b'{"email":"bo@x.io","plan":"gold\\ud800"}\n'
    assert json.loads(line) == UNSTORABLE_RECORDS[1]


def test_bulk_upsert_reports_records_that_cannot_be_stored_and_writes_the_others(owner):
    result = subscribers_bulk_upsert(actor=Actor(user=owner, source="api"), owner=owner, list_name="News",
                                     records=UNSTORABLE_RECORDS)

    assert (result["created"], result["failed"]) == (1, 4)
    assert result["errors"][0] == "record 0: first_name: contains a NUL character, which cannot be stored"
    assert result["errors"][3] == (
        f"record 3: ti{FFFD}er: the field name contains a lone surrogate (invalid Unicode), which cannot be stored"
    )
    assert list(Subscriber.objects.values_list("key", flat=True)) == ["ed@x.io"]
