"""Messy CSV files through the whole pipeline: encodings, delimiters, quoting, ragged rows, huge
fields, HTML, big numbers, duplicates across chunks and header aliases. Every bad row is a row
error with a reason; the good rows around it are imported."""

import pytest

from imports.models import ImportJob, ImportRowError, ImportStatus
from imports.tests.helpers import import_file, run_now, write
from imports.tests.support import upload
from subscribers.models import Subscriber, SubscriberList

pytestmark = pytest.mark.django_db(transaction=True)


def run(owner, tmp_path, content: str | bytes, **options) -> ImportJob:
    return run_now(import_file(owner, write(tmp_path, content), **options))


def names() -> dict[str, str]:
    return dict(Subscriber.objects.values_list("key", "name"))


def test_utf8_with_bom_reads_the_first_header_as_email(owner, tmp_path):
    job = run(owner, tmp_path, "\ufeffEmail,Name\nann@x.io,Zoë\n".encode())

    assert job.options["format"]["encoding"] == "utf-8-sig"
    assert job.status == ImportStatus.COMPLETED and job.created == 1
    assert names() == {"ann@x.io": "Zoë"}


def test_utf8_with_bom_through_the_upload_api(api, tmp_path):
    response = upload(api, "\ufeffemail,name\nann@x.io,Zoë\nbo@x.io,Bø\n".encode())

    assert response.status_code == 202, response.content
    job = run_now(ImportJob.objects.get())
    assert job.options["format"]["encoding"] == "utf-8-sig"
    assert names() == {"ann@x.io": "Zoë", "bo@x.io": "Bø"}


def test_cp1252_file_is_decoded(owner, tmp_path):
    job = run(owner, tmp_path, b"email,name,city\njose@x.io,Jos\xe9,Z\xfcrich\nbo@x.io,Bo \x80,\n")

    assert job.options["format"]["encoding"] == "cp1252"
    assert job.status == ImportStatus.COMPLETED and job.created == 2
    jose = Subscriber.objects.get(key="jose@x.io")
    assert jose.name == "José" and jose.custom_fields == {"city": "Zürich"}
    assert Subscriber.objects.get(key="bo@x.io").name == "Bo €"


def test_cp1252_file_through_the_upload_api(api):
    response = upload(api, b"email,name\njose@x.io,Jos\xe9\n")

    assert response.status_code == 202, response.content
    job = run_now(ImportJob.objects.get())
    assert job.options["format"]["encoding"] == "cp1252"
    assert names() == {"jose@x.io": "José"}


def test_bytes_undefined_in_cp1252_do_not_stop_the_import(owner, tmp_path):
    # \x81 and \x9d have no cp1252 character: that line is read as latin-1 instead.
    job = run(owner, tmp_path, b"email,name\nann@x.io,A\x81nn\nbo@x.io,Bo\xe9\n")

    assert job.status == ImportStatus.COMPLETED and job.created == 2
    assert names() == {"ann@x.io": "A\x81nn", "bo@x.io": "Boé"}


def test_mixed_utf8_and_cp1252_bytes_are_read_as_cp1252_without_failing(owner, tmp_path):
    job = run(owner, tmp_path, "email,name\nann@x.io,Zoë\n".encode() + b"jose@x.io,Jos\xe9\n")

    assert job.status == ImportStatus.COMPLETED and job.created == 2
    assert Subscriber.objects.get(key="jose@x.io").name == "José"
    assert Subscriber.objects.get(key="ann@x.io").name == "ZoÃ«"  # what the bytes say in cp1252


def test_semicolon_delimited_file(owner, tmp_path):
    job = run(owner, tmp_path, "email;name;plan\nann@x.io;Ann, Jr.;pro\nbo@x.io;Bo;free\n")

    assert job.options["format"]["delimiter"] == ";"
    assert job.created == 2
    ann = Subscriber.objects.get(key="ann@x.io")
    assert ann.name == "Ann, Jr." and ann.custom_fields == {"plan": "pro"}


def test_tab_delimited_file(owner, tmp_path):
    job = run(owner, tmp_path, "email\tname\tplan\nann@x.io\tAnn Smith\tpro\nbo@x.io\tBo\t\n")

    assert job.options["format"]["delimiter"] == "\t"
    assert job.created == 2
    assert names() == {"ann@x.io": "Ann Smith", "bo@x.io": "Bo"}


def test_quoted_newlines_stay_inside_the_field_and_rows_keep_spreadsheet_numbers(owner, tmp_path, settings):
    settings.IMPORT_CHUNK_ROWS = 1  # checkpoints after the multi-line record must be exact
    content = 'email,name,notes\nann@x.io,Ann,"line one\nline two\nline three"\nbad,Bad,\nbo@x.io,"Bo\nB",x\n'

    job = run(owner, tmp_path, content)

    assert (job.processed_rows, job.created, job.invalid) == (3, 2, 1)
    assert Subscriber.objects.get(key="ann@x.io").custom_fields == {"notes": "line one\nline two\nline three"}
    assert Subscriber.objects.get(key="bo@x.io").name == "Bo\nB"
    assert list(ImportRowError.objects.values_list("row", flat=True)) == [3]


def test_rows_with_missing_trailing_columns_are_padded(owner, tmp_path):
    job = run(owner, tmp_path, "email,name,city,plan\nann@x.io,Ann\nbo@x.io\ncy@x.io,Cy,Oslo\n")

    assert job.status == ImportStatus.COMPLETED and (job.created, job.invalid) == (3, 0)
    assert names() == {"ann@x.io": "Ann", "bo@x.io": "", "cy@x.io": "Cy"}
    assert Subscriber.objects.get(key="cy@x.io").custom_fields == {"city": "Oslo"}


def test_row_with_too_many_columns_is_a_row_error(owner, tmp_path):
    job = run(owner, tmp_path, "email,name\nann@x.io,Ann\nbo@x.io,Bo,extra,more\ncy@x.io,Cy\n")

    assert job.status == ImportStatus.PARTIALLY_COMPLETED
    assert (job.processed_rows, job.created, job.invalid) == (3, 2, 1)
    error = ImportRowError.objects.get(job=job)
    assert error.row == 3
    assert error.reason == "has 4 fields but the header has 2"
    assert error.values == {"email": "bo@x.io", "name": "Bo", "extra_3": "extra", "extra_4": "more"}
    assert not Subscriber.objects.filter(key="bo@x.io").exists()


def test_a_10_mb_field_is_a_row_error_and_the_other_rows_are_imported(owner, tmp_path):
    huge = "x" * (10 * 1024 * 1024)
    content = f"email,name,notes\nann@x.io,Ann,short\nbig@x.io,Big,{huge}\nbo@x.io,Bo,\n"

    job = run(owner, tmp_path, content)

    assert job.status == ImportStatus.PARTIALLY_COMPLETED
    assert (job.processed_rows, job.created, job.invalid) == (3, 2, 1)
    assert sorted(names()) == ["ann@x.io", "bo@x.io"]
    error = ImportRowError.objects.get(job=job)
    assert error.row == 3 and "has a field longer than 1,048,576 characters" in error.reason


def test_a_10_mb_quoted_field_spanning_lines_is_one_row_error_and_the_rows_after_it_are_imported(owner, tmp_path):
    huge = ("y" * 1023 + "\n") * (10 * 1024)  # 10 MB inside quotes, over 10,240 lines
    content = f'email,name,notes\nann@x.io,Ann,short\nbig@x.io,Big,"{huge}"\nbo@x.io,Bo,\n'

    job = run(owner, tmp_path, content)

    rows_in_error = list(ImportRowError.objects.filter(job=job).values_list("row", flat=True)[:5])
    assert rows_in_error == [3]
    assert (job.processed_rows, job.created, job.invalid) == (3, 2, 1)
    assert sorted(names()) == ["ann@x.io", "bo@x.io"]


def test_a_long_name_is_left_out_with_a_warning_naming_the_field(owner, tmp_path):
    job = run(owner, tmp_path, f"email,name\nann@x.io,{'n' * 201}\nbo@x.io,Bo\n")

    assert (job.created, job.invalid, job.warnings) == (2, 0, 1)
    warning = ImportRowError.objects.get(job=job)
    assert (warning.kind, warning.column, warning.reason) == ("warning", "name", "name: is longer than 200 characters")


def test_html_in_names_and_fields_is_stored_verbatim(owner, tmp_path):
    content = 'email,name,bio\nann@x.io,<b>Ann</b>,"<script>alert(""x"")</script>"\n'

    run(owner, tmp_path, content)

    ann = Subscriber.objects.get()
    assert ann.name == "<b>Ann</b>"
    assert ann.custom_fields == {"bio": '<script>alert("x")</script>'}


def test_huge_numbers_are_kept_as_written(owner, tmp_path):
    content = "email,account,score,ratio\nann@x.io,123456789012345678901234567890,1e308,0.1000000000000000000001\n"

    run(owner, tmp_path, content)

    assert Subscriber.objects.get().custom_fields == {
        "account": "123456789012345678901234567890", "score": "1e308", "ratio": "0.1000000000000000000001",
    }


def test_duplicates_across_chunks_are_counted_once(owner, tmp_path, settings):
    settings.IMPORT_CHUNK_ROWS = 2
    content = "email,name\na@x.io,A1\nb@x.io,B\nc@x.io,C\nA@x.io,A2\nd@x.io,D\nb@x.io,B2\na@x.io,A3\n"

    job = run(owner, tmp_path, content)

    assert job.status == ImportStatus.COMPLETED
    assert (job.processed_rows, job.created, job.duplicates, job.invalid) == (7, 4, 3, 0)
    assert job.stats["chunks"] == 4
    assert Subscriber.objects.count() == 4
    assert Subscriber.objects.get(key="a@x.io").name == "A1"  # the first occurrence wins
    assert SubscriberList.objects.get().subscriber_count == 4
    assert job.stats["duplicate_percentage"] == round(100 * 3 / 7, 2)


def test_duplicates_inside_one_chunk_are_counted_once(owner, tmp_path):
    job = run(owner, tmp_path, "email\na@x.io\nA@X.IO\n a@x.io \nb@x.io\n")

    assert (job.processed_rows, job.created, job.duplicates) == (4, 2, 2)
    assert Subscriber.objects.count() == 2


@pytest.mark.parametrize(
    ("header", "row", "expected"),
    [
        ("E-mail,First Name,Last Name", "ann@x.io,Ann,Lee", {"email": "ann@x.io", "name": "Ann Lee"}),
        ("Email Address,Full Name,Company", "ann@x.io,Ann Lee,Acme", {"email": "ann@x.io", "name": "Ann Lee"}),
        ("EMAIL_ADDRESS,mobile,first_name", "ann@x.io,+14155552671,Ann", {"phone": "+14155552671", "name": "Ann"}),
    ],
)
def test_header_aliases_map_to_fields(owner, tmp_path, header, row, expected):
    job = run(owner, tmp_path, f"{header}\n{row}\n")

    assert job.status == ImportStatus.COMPLETED, job.error_message
    ann = Subscriber.objects.get()
    for attribute, value in expected.items():
        assert getattr(ann, attribute) == value
    assert ann.custom_fields == {}


def test_standard_fields_from_aliases(owner, tmp_path):
    run(owner, tmp_path, "E-mail,First Name,Surname,Organisation,Job Title,Country Code,Tier\nann@x.io,Ann,Lee,Acme,CTO,NO,gold\n")

    ann = Subscriber.objects.get()
    assert ann.standard_fields == {
        "first_name": "Ann", "last_name": "Lee", "company": "Acme", "job_title": "CTO", "country": "NO",
    }
    assert ann.custom_fields == {"tier": "gold"}
    assert ann.name == "Ann Lee"


def test_mobile_alias_keys_a_phone_list(owner, tmp_path, settings):
    settings.PHONE_DEFAULT_REGION = "US"
    job = run(owner, tmp_path, "Mobile Number,Name\n415-555-2671,Ann\n", key_field="phone", list_name="Texts")

    assert job.created == 1
    assert Subscriber.objects.get().key == "+14155552671"


def test_second_email_column_becomes_a_custom_field(owner, tmp_path):
    run(owner, tmp_path, "Email,Email Address\nann@x.io,ann@work.io\n")

    ann = Subscriber.objects.get()
    assert ann.email == "ann@x.io"
    assert ann.custom_fields == {"email_address": "ann@work.io"}


def test_invalid_emails_and_statuses_are_row_errors_naming_the_field(owner, tmp_path):
    content = "email,status\nann@x.io,active\nnot-an-email,active\n,active\nbo@x.io,sleeping\n"

    job = run(owner, tmp_path, content)

    assert (job.processed_rows, job.created, job.invalid) == (4, 1, 3)
    reasons = dict(ImportRowError.objects.filter(job=job).values_list("row", "reason"))
    assert reasons[3].startswith("email:") and "not-an-email" in reasons[3]
    assert reasons[4] == "email: is required"
    assert reasons[5] == "status: 'sleeping' is not a valid status"
    assert job.error_message == "3 of 4 rows were invalid"


def test_blank_lines_are_skipped_but_keep_row_numbers(owner, tmp_path):
    job = run(owner, tmp_path, "email\nann@x.io\n\n\nbad\nbo@x.io\n")

    assert (job.created, job.invalid) == (2, 1)
    assert ImportRowError.objects.get(job=job).row == 5


def test_windows_line_endings(owner, tmp_path):
    job = run(owner, tmp_path, b"email,name\r\nann@x.io,Ann\r\nbo@x.io,Bo\r\n")

    assert job.created == 2
    assert names() == {"ann@x.io": "Ann", "bo@x.io": "Bo"}
