"""Following an import: GET /api/v1/imports/ and /{id}, the row-error report, the contacts it
imported, and cancel."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditLog
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import run_now
from imports.tests.support import IMPORTS, job_url, pending_job, read_csv, set_state, sha256
from subscribers.models import Subscriber

pytestmark = pytest.mark.django_db(transaction=True)

MESSY = (
    "Email,Name,Plan\n"
    "ann@x.io,Ann,pro\n"
    "not-an-email,Bad,free\n"
    "bo@x.io,Bo,\n"
    "ann@x.io,Ann again,\n"
    "cy@x.io,Cy,gold,extra\n"
    ",Nobody,\n"
    "=cmd|' /C calc'!A0,Formula,\n"
)


@pytest.fixture
def finished(owner, tmp_path):
    return run_now(pending_job(owner, tmp_path, MESSY, name="messy.csv"))


def test_job_detail_shows_status_counts_and_figures(api, finished):
    response = api.get(job_url(finished))

    assert response.status_code == 200
    body = response.json()
    assert body["import_id"] == str(finished.pk) == body["id"]
    assert body["status"] == body["stored_status"] == "partially_completed"
    assert body["sha256"] == sha256(MESSY.encode())
    assert body["size_bytes"] == len(MESSY.encode())
    assert body["filename"] == "messy.csv" and body["list_name"] == "News" and body["source"] == "csv"
    assert (body["total_rows"], body["processed_rows"], body["created"], body["updated"], body["unchanged"],
            body["duplicates"], body["invalid"]) == (7, 7, 2, 0, 0, 1, 4)
    assert body["progress"] == 100.0
    assert isinstance(body["rows_per_second"], float) and body["rows_per_second"] >= 0
    assert body["eta_seconds"] is None  # finished
    assert body["error_message"] == "4 of 7 rows were invalid"
    assert body["checkpoint"]["row"] == 8
    assert body["started_at"] and body["finished_at"]


def test_running_job_shows_rows_per_second_and_eta(api, owner, tmp_path):
    job = pending_job(owner, tmp_path)
    now = timezone.now()
    set_state(job, status=ImportStatus.PROCESSING, started_at=now - timedelta(seconds=10), heartbeat_at=now,
              processed_rows=1000, size_bytes=400, checkpoint={"offset": 100, "row": 1000})

    body = api.get(job_url(job)).json()

    assert body["status"] == "processing"
    assert 80 <= body["rows_per_second"] <= 100.1
    assert 30 <= body["eta_seconds"] <= 36  # a quarter of the bytes in ~10 s: ~30 s to go


def test_job_whose_worker_went_quiet_is_shown_stuck(api, owner, tmp_path, settings):
    job = pending_job(owner, tmp_path)
    set_state(job, status=ImportStatus.PROCESSING,
              heartbeat_at=timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 5))

    body = api.get(job_url(job)).json()

    assert body["status"] == "stuck" and body["stored_status"] == "processing"


def test_job_detail_of_an_unknown_or_malformed_id_is_404(api):
    assert api.get(f"{IMPORTS}00000000-0000-0000-0000-000000000000").status_code == 404
    response = api.get(f"{IMPORTS}not-a-uuid")
    assert response.status_code == 404
    assert response.json()["detail"] == "Import job 'not-a-uuid' not found"


def test_job_list_shows_the_owners_jobs_newest_first(api, owner, outsider, tmp_path, finished):
    second = pending_job(owner, tmp_path, "email\nz@x.io\n", name="two.csv", list_name="Other")
    pending_job(outsider, tmp_path, "email\nq@x.io\n", name="theirs.csv")

    response = api.get(IMPORTS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [row["import_id"] for row in body["results"]] == [str(second.pk), str(finished.pk)]
    assert body["results"][1]["invalid"] == 4


def test_job_list_filters_by_status_and_list_name(api, owner, tmp_path, finished):
    pending_job(owner, tmp_path, "email\nz@x.io\n", name="two.csv", list_name="Other")

    by_status = api.get(IMPORTS, {"status": "partially_completed"}).json()
    by_list = api.get(IMPORTS, {"list_name": "Other"}).json()

    assert [row["import_id"] for row in by_status["results"]] == [str(finished.pk)]
    assert [row["list_name"] for row in by_list["results"]] == ["Other"]


def test_error_report_is_csv_with_spreadsheet_row_numbers(api, finished):
    response = api.get(job_url(finished, "/errors"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="import-{finished.pk}-errors.csv"' in response["Content-Disposition"]
    rows = read_csv(response)
    header = rows[0]
    assert header[:4] == ["row", "kind", "column", "reason"] and sorted(header[4:]) == ["Email", "Name", "Plan"]
    assert [r[0] for r in rows[1:]] == ["3", "6", "7", "8"]  # the header is row 1
    by_row = {r[0]: dict(zip(header, r)) for r in rows[1:]}
    assert by_row["3"]["reason"].startswith("email:") and "not-an-email" in by_row["3"]["reason"]
    assert (by_row["3"]["Email"], by_row["3"]["Name"], by_row["3"]["Plan"]) == ("not-an-email", "Bad", "free")
    assert by_row["6"]["reason"] == "has 4 fields but the header has 3"
    assert rows[2][-1] == "extra"  # the extra cell follows the named columns
    assert by_row["7"]["reason"] == "email: is required" and by_row["7"]["Name"] == "Nobody"
    # A cell that a spreadsheet would run as a formula is neutralised in the report.
    assert not by_row["8"]["Email"].startswith("=")
    assert "cmd|' /C calc'!A0" in by_row["8"]["Email"]


def test_error_report_starts_with_a_bom_so_spreadsheets_read_accents_and_formulas_stay_inert(api, owner, tmp_path):
    job = run_now(pending_job(owner, tmp_path, "Courriel,Téléphone fixe,=HYPERLINK(1)\nnot-an-email,=1+1,x\n"))

    raw = b"".join(api.get(job_url(job, "/errors")).streaming_content)

    assert raw.startswith("\ufeffrow,kind,column,reason,Courriel,Téléphone fixe,'=HYPERLINK(1)\r\n".encode())
    assert raw.count(b"\xef\xbb\xbf") == 1
    assert raw.endswith(b",not-an-email,'=1+1,x\r\n")


def test_error_report_columns_follow_the_files_column_order(api, finished):
    rows = read_csv(api.get(job_url(finished, "/errors")))

    assert rows[0] == ["row", "kind", "column", "reason", "Email", "Name", "Plan"]
    assert rows[1] == ["3", "error", "", rows[1][3], "not-an-email", "Bad", "free"]


def test_contacts_lists_what_the_import_wrote_paginated(api, owner, tmp_path):
    content = "email,name\n" + "".join(f"p{i}@x.io,P{i}\n" for i in range(5))
    job = run_now(pending_job(owner, tmp_path, content))
    other = run_now(pending_job(owner, tmp_path, "email\nelse@x.io\n", name="o.csv"))

    page1 = api.get(job_url(job, "/contacts"), {"limit": 2})
    page3 = api.get(job_url(job, "/contacts"), {"limit": 2, "page": 3})

    assert page1.status_code == 200
    body = page1.json()
    assert body["count"] == 5 and body["next"] and body["previous"] is None
    assert [row["email"] for row in body["results"]] == ["p0@x.io", "p1@x.io"]
    assert body["results"][0]["name"] == "P0" and body["results"][0]["list"] == "News"
    assert body["results"][0]["import_job"] == str(job.pk)
    assert [row["email"] for row in page3.json()["results"]] == ["p4@x.io"]
    assert api.get(job_url(other, "/contacts")).json()["count"] == 1


def test_cancel_a_pending_job_deletes_its_file(api, owner, tmp_path):
    job = pending_job(owner, tmp_path)
    path = Path(job.file_path)
    assert path.exists()

    response = api.post(job_url(job, "/cancel"))

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    job.refresh_from_db()
    assert job.status == ImportStatus.CANCELLED and job.file_path == "" and job.finished_at
    assert job.error_message == "Cancelled"
    assert not path.exists()
    audit = AuditLog.objects.filter(entity_id=str(job.pk), action="update").latest("id")
    assert audit.actor == owner and audit.before == {"status": "pending"} and audit.after == {"status": "cancelled"}


def test_a_cancelled_job_is_never_run(api, owner, tmp_path):
    job = pending_job(owner, tmp_path)
    api.post(job_url(job, "/cancel"))

    from imports import pipeline, tasks

    assert pipeline.import_claim(job_id=job.pk) is None
    assert tasks.run_import(str(job.pk)) == "not claimed"
    assert not Subscriber.objects.exists()


def test_the_audit_row_of_a_partly_imported_file_names_the_status_in_words(finished):
    audit = AuditLog.objects.filter(entity_id=str(finished.pk), action="import").latest("id")

    assert audit.user_action == (
        "Import into 'News' partially completed: 2 created, 0 updated, 1 duplicates, 4 invalid"
    )
    assert audit.after["status"] == "partially_completed"  # the stored value stays for machines


def test_cancel_a_finished_job_is_a_conflict(api, finished):
    response = api.post(job_url(finished, "/cancel"))

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Job {finished.pk} is partially completed; only pending or processing jobs can be cancelled"
    )
    finished.refresh_from_db()
    assert finished.status == ImportStatus.PARTIALLY_COMPLETED


def test_cancel_a_cancelled_job_is_a_conflict(api, owner, tmp_path):
    job = pending_job(owner, tmp_path)
    api.post(job_url(job, "/cancel"))

    response = api.post(job_url(job, "/cancel"))

    assert response.status_code == 409
    assert ImportJob.objects.get().status == ImportStatus.CANCELLED


def test_a_cancelled_upload_can_be_uploaded_again(api, owner, tmp_path):
    from imports.tests.support import upload

    first = upload(api, "email\nann@x.io\n").json()["import_id"]
    api.post(f"{IMPORTS}{first}/cancel")

    response = upload(api, "email\nann@x.io\n")

    assert response.status_code == 202
    assert response.json()["import_id"] != first
