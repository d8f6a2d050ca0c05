"""Only the key decides a row: a bad secondary field (a phone `phonenumbers` calls invalid on an
email-keyed list, a bad email on a phone-keyed one, an over-long name) keeps the row without that
field and puts a warning in the report, counted apart from invalid rows."""

import csv
import io
import json

import pytest

from imports.models import ImportJob, ImportRowError, ImportStatus
from imports.tests.helpers import import_file, run_now, write
from subscribers.models import Subscriber
from subscribers.services import list_create
from inboxerr.actors import Actor

pytestmark = pytest.mark.django_db(transaction=True)

# A realistic export: phones with separators, some in unassigned area codes (+1-555-01x is
# fictional, +1-999 has no area), accented local parts, an IDN domain, one address that is no
# address (the key: that row alone is invalid).
HEADER = "Email,First Name,Last Name,Phone,City,Plan,Signup Date,Company,Value\n"
ROWS = [
    "ann.lee@example.com,Ann,Lee,+1-415-555-2671,Oslo,pro,2024-01-02,Acme,10.5",
    "renée.lee6@outlook.com,Renée,Lee,+1-999-555-0100,Lyon,free,2024-02-03,Bücher AG,3",
    "USER@Bücher.Example,Jörg,Muß,+44 (0)20 7183-8750,Berlin,pro,2024-03-04,,7",
    "bo@example.org,Bo,,+1 (555) 010-0000,Rome,free,2024-04-05,,",
    "not-an-address,Cy,,+1-415-555-2672,Paris,pro,2024-05-06,,",
    "dee@example.org,Dee,,+39 06 1234 5678,Rome,pro,2024-06-07,,",
]


def read_report(api, job) -> list[list[str]]:
    response = api.get(f"/api/v1/imports/{job.pk}/errors")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_a_bad_phone_keeps_the_row_without_the_phone_and_warns(owner, tmp_path, api):
    job = run_now(import_file(owner, write(tmp_path, HEADER + "\n".join(ROWS) + "\n")))

    assert job.status == ImportStatus.PARTIALLY_COMPLETED  # one row has no usable key
    assert (job.processed_rows, job.created, job.invalid, job.warnings) == (6, 5, 1, 2)
    renee = Subscriber.objects.get(key="renée.lee6@outlook.com")
    assert renee.phone == "" and renee.name == "Renée Lee" and renee.custom_fields["city"] == "Lyon"
    assert Subscriber.objects.get(key="bo@example.org").phone == ""
    # An IDN domain is stored in its Unicode form, lower-cased.
    assert Subscriber.objects.get(key="user@bücher.example").phone == "+442071838750"
    assert Subscriber.objects.get(key="ann.lee@example.com").phone == "+14155552671"
    assert Subscriber.objects.get(key="dee@example.org").phone == "+390612345678"
    warnings = list(ImportRowError.objects.filter(job=job, kind="warning").order_by("row"))
    assert [(w.row, w.column) for w in warnings] == [(3, "Phone"), (5, "Phone")]
    assert "+1-999-555-0100" in warnings[0].reason and "not a valid phone number" in warnings[0].reason
    assert warnings[0].values["Email"] == "renée.lee6@outlook.com"
    error = ImportRowError.objects.get(job=job, kind="error")
    assert error.row == 6 and "not a valid email address" in error.reason

    report = read_report(api, job)
    assert report[0][:4] == ["row", "kind", "column", "reason"]
    assert [(line[0], line[1], line[2]) for line in report[1:]] == [
        ("3", "warning", "Phone"), ("5", "warning", "Phone"), ("6", "error", ""),
    ]
    assert report[1][report[0].index("Phone")] == "'+1-999-555-0100"  # neutralised like every cell

    detail = api.get(f"/api/v1/imports/{job.pk}").json()
    assert (detail["invalid"], detail["warnings"], detail["report_truncated"]) == (1, 2, False)


def test_a_file_where_half_the_rows_have_a_bad_phone_keeps_every_row(owner, tmp_path, settings):
    settings.IMPORT_CHUNK_ROWS = 7  # chunks that cut through the pattern
    lines = [
        f"p{n}@example.com,P{n},{'+1-415-555-%04d' % (2600 + n) if n % 2 else '+1-555-%03d-%04d' % (100 + n % 800, n)}"
        for n in range(40)
    ]
    job = run_now(import_file(owner, write(tmp_path, "email,name,mobile\n" + "\n".join(lines) + "\n")))

    assert job.status == ImportStatus.COMPLETED
    assert (job.created, job.invalid, job.warnings) == (40, 0, 20)
    assert Subscriber.objects.filter(list__name="News").count() == 40
    assert Subscriber.objects.filter(list__name="News", phone="").count() == 20
    assert ImportRowError.objects.filter(job=job, kind="warning", column="mobile").count() == 20


def test_on_a_phone_keyed_list_a_bad_email_is_a_warning_and_a_bad_phone_an_error(owner, tmp_path):
    list_create(actor=Actor(user=owner, source="api"), owner=owner, name="Texts", key_field="phone")
    content = "phone,email\n+1 415 555 2671,not-an-address\n+1-999-555-0100,ok@example.com\n"
    job = run_now(import_file(owner, write(tmp_path, content), list_name="Texts"))

    assert (job.created, job.invalid, job.warnings) == (1, 1, 1)
    kept = Subscriber.objects.get(list__name="Texts")
    assert (kept.key, kept.email) == ("+14155552671", "")
    assert ImportRowError.objects.get(job=job, kind="warning").column == "email"
    assert "phone" in ImportRowError.objects.get(job=job, kind="error").reason


def test_keep_raw_keeps_the_bad_value_as_written_in_a_custom_field(owner, tmp_path):
    path = write(tmp_path, "Email,Phone\na@example.com,+1-999-555-0100\nb@example.com,+1 415 555 2671\n")
    job = run_now(import_file(owner, path, keep_raw=["Phone"]))

    assert (job.created, job.warnings) == (2, 1)
    a = Subscriber.objects.get(key="a@example.com")
    assert a.phone == "" and a.custom_fields == {"phone_raw": "+1-999-555-0100"}
    assert Subscriber.objects.get(key="b@example.com").custom_fields == {}
    assert job.options["keep_raw"] == ["Phone"]


def test_keep_raw_naming_a_column_the_file_lacks_is_refused(owner, tmp_path, api):
    path = write(tmp_path, "Email,Phone\na@example.com,1\n")
    with open(path, "rb") as handle:
        response = api.post("/api/v1/imports/csv", {"file": handle, "list_name": "News",
                                                    "keep_raw": json.dumps(["Mobile"])}, format="multipart")

    assert response.status_code == 400
    assert "keep_raw" in response.json()["detail"] and "Mobile" in response.json()["detail"]
    assert not ImportJob.objects.exists()


def test_an_over_long_name_is_left_out_with_a_warning(owner, tmp_path):
    job = run_now(import_file(owner, write(tmp_path, f"email,name\na@example.com,{'N' * 201}\n")))

    assert (job.created, job.invalid, job.warnings) == (1, 0, 1)
    assert Subscriber.objects.get().name == ""
    assert ImportRowError.objects.get().column == "name"


def test_stored_report_lines_are_capped_while_the_counts_go_on(owner, tmp_path, settings, api):
    settings.IMPORT_MAX_STORED_ERRORS = 5
    settings.IMPORT_CHUNK_ROWS = 4
    lines = [f"p{n}@example.com,+1-999-555-{n:04d}" for n in range(6)] + [f"bad{n}," for n in range(6)]
    job = run_now(import_file(owner, write(tmp_path, "email,phone\n" + "\n".join(lines) + "\n")))

    assert (job.created, job.invalid, job.warnings) == (6, 6, 6)
    assert ImportRowError.objects.filter(job=job).count() == 5
    assert list(ImportRowError.objects.filter(job=job).order_by("row").values_list("row", flat=True)) == [2, 3, 4, 5, 6]
    assert job.stats["report_truncated"] is True and job.stats["report_lines_stored"] == 5
    report = read_report(api, job)
    assert report[-1][1] == "truncated" and "first 5 lines of 12" in report[-1][3]
    assert api.get(f"/api/v1/imports/{job.pk}").json()["report_truncated"] is True


def test_a_background_upload_keeps_records_with_a_bad_secondary_field(owner, api):
    records = [
        {"email": "renée@bücher.example", "phone": "+1-999-555-0100", "tags": ["a"]},
        {"email": "ok@example.com", "phone": "+1 415 555 2671"},
        {"email": "nope", "phone": "+1 415 555 2672"},
    ]
    response = api.post("/api/v1/subscribers/background-upload", {"list_name": "News", "subscribers": records},
                        format="json")
    assert response.status_code == 202, response.content
    job = run_now(ImportJob.objects.get())

    assert (job.created, job.invalid, job.warnings) == (2, 1, 2)
    renee = Subscriber.objects.get(key="renée@bücher.example")
    assert renee.phone == "" and "tags" not in renee.custom_fields
    assert sorted(ImportRowError.objects.filter(job=job, kind="warning").values_list("column", flat=True)) == [
        "phone", "tags",
    ]
