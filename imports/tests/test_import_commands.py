"""manage.py import_csv, cleanup_stuck_jobs and clear_jobs."""

import json
import os
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditLog
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import run_now, write
from imports.tests.support import pending_job, queued_job_ids, sha256, stored_files, stuck
from subscribers.models import Subscriber, SubscriberList

pytestmark = pytest.mark.django_db(transaction=True)

CSV = "E-mail,First Name,Plan\nann@x.io,Ann,pro\nbo@x.io,Bo,\nann@x.io,Again,\nbad,Bad,\n"


def run_command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_csv_sync_json_prints_one_object_with_the_counts(owner, tmp_path):
    path = write(tmp_path, CSV)

    out, _ = run_command("import_csv", str(path), "--list", "Cmd", "--owner", "owner", "--sync", "--json")

    summary = json.loads(out)  # exactly one JSON object, nothing else on stdout
    job = ImportJob.objects.get()
    assert summary["import_id"] == str(job.pk)
    assert summary["status"] == "partially_completed"
    assert (summary["processed_rows"], summary["created"], summary["updated"], summary["duplicates"],
            summary["invalid"]) == (4, 2, 0, 1, 1)
    assert summary["sha256"] == sha256(path.read_bytes()) and summary["filename"] == path.name
    assert Subscriber.objects.filter(list__name="Cmd", list__owner=owner).count() == 2
    assert SubscriberList.objects.get(name="Cmd").subscriber_count == 2
    assert queued_job_ids() == []  # ran here, not on a worker
    assert stored_files() == [] and path.exists()  # the source file is the user's: left alone
    started = AuditLog.objects.filter(entity_id=str(job.pk)).order_by("id").first()
    assert started.actor == owner and started.metadata["source"] == "command"


def test_import_csv_sync_prints_a_summary_line(owner, tmp_path):
    out, err = run_command("import_csv", str(write(tmp_path, CSV)), "--list", "Cmd", "--owner", "owner", "--sync")

    assert out.startswith("partially_completed: 4 rows, 2 created, 0 updated, 1 duplicates, 1 invalid")
    assert "100.0%" in err  # the progress bar


def test_import_csv_without_sync_queues_the_job(owner, tmp_path):
    out, _ = run_command("import_csv", str(write(tmp_path, CSV)), "--list", "Cmd", "--owner", "owner")

    job = ImportJob.objects.get()
    assert job.status == ImportStatus.PENDING
    assert out.strip() == f"Queued import {job.pk} into 'Cmd'"
    assert queued_job_ids() == [str(job.pk)]
    assert Path(job.file_path).exists() and not Subscriber.objects.exists()


def test_import_csv_json_without_sync_prints_the_queued_job(owner, tmp_path):
    out, _ = run_command("import_csv", str(write(tmp_path, CSV)), "--list", "Cmd", "--owner", "owner", "--json")

    assert json.loads(out)["status"] == "pending"


def test_import_csv_with_mapping_and_phone_key(owner, tmp_path, settings):
    settings.PHONE_DEFAULT_REGION = "US"
    path = write(tmp_path, "Contact,Who\n415-555-2671,Ann\n")

    out, _ = run_command("import_csv", str(path), "--list", "Texts", "--owner", "owner", "--key-field", "phone",
                         "--mapping", json.dumps({"Contact": "phone", "Who": "name"}), "--sync", "--json")

    assert json.loads(out)["created"] == 1
    ann = Subscriber.objects.get()
    assert (ann.key, ann.name, ann.list.key_field) == ("+14155552671", "Ann", "phone")


def test_import_csv_no_update_leaves_existing_rows(owner, tmp_path):
    run_command("import_csv", str(write(tmp_path, "email,name\nann@x.io,Ann\n")), "--list", "Cmd", "--owner", "owner", "--sync")

    out, _ = run_command("import_csv", str(write(tmp_path, "email,name\nann@x.io,Changed\n", "2.csv")), "--list", "Cmd",
                         "--owner", "owner", "--sync", "--json", "--no-update")

    assert (json.loads(out)["updated"], json.loads(out)["unchanged"]) == (0, 1)
    assert Subscriber.objects.get().name == "Ann"


def test_import_csv_refuses_the_same_file_twice_unless_forced(owner, tmp_path):
    path = write(tmp_path, CSV)
    run_command("import_csv", str(path), "--list", "Cmd", "--owner", "owner", "--sync", "--json")

    with pytest.raises(CommandError, match="already imported into 'Cmd'"):
        run_command("import_csv", str(path), "--list", "Cmd", "--owner", "owner", "--sync")
    out, _ = run_command("import_csv", str(path), "--list", "Cmd", "--owner", "owner", "--sync", "--json", "--force")

    assert json.loads(out)["unchanged"] == 2
    assert ImportJob.objects.count() == 2 and stored_files() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mapping", "{nope"], "--mapping is not valid JSON"),
        (["--owner", "ghost"], "User 'ghost' not found"),
        (["--mapping", json.dumps({"Missing": "email"})], "mapping: no column named 'Missing' in the file"),
    ],
)
def test_import_csv_bad_input_is_a_command_error(owner, tmp_path, args, message):
    path = write(tmp_path, CSV)
    argv = ["import_csv", str(path), "--list", "Cmd", "--sync"]
    if "--owner" not in args:
        argv += ["--owner", "owner"]

    with pytest.raises(CommandError, match=message):
        run_command(*argv, *args)
    assert not ImportJob.objects.exists() and stored_files() == []


def test_import_csv_of_a_missing_file_names_it(owner, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run_command("import_csv", str(tmp_path / "nope.csv"), "--list", "Cmd", "--owner", "owner")
    assert not ImportJob.objects.exists()


def test_import_csv_sync_fails_when_every_row_is_invalid(owner, tmp_path):
    with pytest.raises(CommandError, match="1 of 1 rows were invalid"):
        run_command("import_csv", str(write(tmp_path, "email\nbad\n")), "--list", "Cmd", "--owner", "owner", "--sync")
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.FAILED and Path(job.file_path).exists()


def test_cleanup_stuck_jobs_marks_stuck_jobs_failed(owner, tmp_path):
    silent = stuck(pending_job(owner, tmp_path, name="a.csv"))
    waiting = pending_job(owner, tmp_path, "email\nz@x.io\n", name="b.csv")

    out, _ = run_command("cleanup_stuck_jobs")

    result = json.loads(out)
    assert result["cleaned"] == 1 and result["stuck_jobs"][0]["job_id"] == str(silent.pk)
    silent.refresh_from_db()
    waiting.refresh_from_db()
    assert silent.status == ImportStatus.FAILED and waiting.status == ImportStatus.PENDING
    assert AuditLog.objects.filter(user_action="Cleaned 1 stuck import job(s)", metadata__source="command").exists()


def test_cleanup_stuck_jobs_requeue_resumes_them(owner, tmp_path):
    silent = stuck(pending_job(owner, tmp_path))

    out, _ = run_command("cleanup_stuck_jobs", "--requeue")

    assert out.strip() == "Requeued 1 stuck job(s)"
    silent.refresh_from_db()
    assert (silent.status, silent.retry_count) == (ImportStatus.PENDING, 1)
    assert queued_job_ids()[-1] == str(silent.pk)
    job = run_now(silent)
    assert job.status == ImportStatus.COMPLETED and job.created == 2


def test_clear_jobs_deletes_finished_job_records(owner, tmp_path):
    run_now(pending_job(owner, tmp_path, name="a.csv"))
    run_now(pending_job(owner, tmp_path, "email\nbad\n", name="b.csv"))
    waiting = pending_job(owner, tmp_path, "email\nz@x.io\n", name="c.csv")
    set_old = ImportJob.objects.filter(pk=waiting.pk)
    set_old.update(created_at=timezone.now() - timedelta(minutes=5))

    out, _ = run_command("clear_jobs")

    assert out.strip() == "Cleared 2 old jobs"
    assert list(ImportJob.objects.values_list("pk", flat=True)) == [waiting.pk]
    assert Subscriber.objects.count() == 2
    assert stored_files() == [Path(waiting.file_path)]


# --- files and arguments the command cannot take: one line naming them, nothing changed ---------

UTF16_TEXT = "email,name\r\nann@x.io,Ann\r\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_import_csv_of_a_utf16_file_names_the_file_and_its_encoding(owner, tmp_path, encoding):
    path = write(tmp_path, UTF16_TEXT.encode(encoding), name="people.csv")

    with pytest.raises(CommandError) as refused:
        run_command("import_csv", str(path), "--list", "Cmd", "--owner", "owner", "--sync")

    assert str(refused.value) == (f"{path}: This is not a text file the import reads (it is UTF-16 text): "
                                  "save it as CSV in UTF-8 and upload it again")
    assert not ImportJob.objects.exists() and not SubscriberList.objects.exists() and stored_files() == []


def test_import_csv_reads_a_latin1_file_as_windows_1252_as_an_upload_does(owner, tmp_path):
    path = write(tmp_path, "email,name\nann@x.io,Jérôme\n".encode("latin-1"))

    out, _ = run_command("import_csv", str(path), "--list", "Cmd", "--owner", "owner", "--sync", "--json")

    assert json.loads(out)["created"] == 1
    assert Subscriber.objects.get().name == "Jérôme"


def test_import_csv_with_an_owner_not_in_utf8_is_a_command_error(owner, tmp_path):
    # A shell in Latin-1 passes b"adm\xe9n"; Python hands it over with a lone surrogate for \xe9.
    path = write(tmp_path, CSV)
    owner_arg = b"adm\xe9n".decode("utf-8", "surrogateescape")

    with pytest.raises(CommandError, match="^User 'adm\ufffdn' not found$"):
        run_command("import_csv", str(path), "--list", "Cmd", "--owner", owner_arg, "--sync")
    assert not ImportJob.objects.exists() and not SubscriberList.objects.exists() and stored_files() == []


def test_import_csv_from_a_shell_prints_one_line_and_exits_non_zero(owner, tmp_path, settings):
    import subprocess
    import sys

    from inboxerr.tests.processes import ROOT, current_database_url

    utf16 = write(tmp_path, UTF16_TEXT.encode("utf-16"), name="people.csv")
    env = {**os.environ, "DATABASE_URL": current_database_url(), "IMPORT_DIR": str(settings.IMPORT_DIR)}
    for argv in ([str(utf16).encode(), b"--owner", b"owner"], [str(write(tmp_path, CSV)).encode(), b"--owner", b"adm\xe9n"]):
        done = subprocess.run([sys.executable.encode(), b"manage.py", b"import_csv", *argv, b"--list", b"Cmd", b"--sync"],
                              cwd=ROOT, env=env, capture_output=True, timeout=120)
        assert done.returncode == 1, done.stderr
        assert done.stderr.decode().startswith("CommandError: ") and done.stderr.count(b"\n") == 1, done.stderr
        assert b"Traceback" not in done.stderr
    assert not ImportJob.objects.exists() and not SubscriberList.objects.exists() and stored_files() == []
