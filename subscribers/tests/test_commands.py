"""Management commands: export_list, create_api_token and bootstrap (purge_audit lives with the
audit app's tests)."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import AuditLog
from subscribers.tests.helpers import LISTS, add, make_list


def run(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# --- export_list ---------------------------------------------------------------------------------


@pytest.fixture
def news(owner):
    lst = make_list(owner, "News")
    add(lst, email="ann@example.com", name="=HYPERLINK(\"http://x\")", custom_fields={"plan": "pro"})
    add(lst, email="bo@example.com", phone="+15555550100", standard_fields={"first_name": "Bo"})
    return lst


def test_export_list_writes_the_csv_to_a_file_and_reports_on_stderr(news, tmp_path):
    target = tmp_path / "news.csv"

    out, err = run("export_list", "News", "--output", str(target), "--owner", "owner")

    rows = list(csv.DictReader(target.open(newline="", encoding="utf-8")))
    assert [r["email"] for r in rows] == ["ann@example.com", "bo@example.com"]
    assert rows[0]["name"] == "'=HYPERLINK(\"http://x\")"
    assert (rows[0]["plan"], rows[1]["first_name"], rows[1]["phone"]) == ("pro", "Bo", "+15555550100")
    assert out == ""
    assert err.strip() == f"Exported 2 subscribers of 'News' to {target}"


def test_export_list_is_audited_as_a_command(news, tmp_path):
    run("export_list", "News", "--output", str(tmp_path / "x.csv"), "--owner", "owner")

    row = AuditLog.objects.get(action="export")
    assert (row.entity_type, row.entity_id, row.actor, row.owner_id) == ("list", str(news.pk), None, news.owner_id)
    assert row.metadata == {"source": "command"}


def test_export_list_to_stdout_writes_through_the_commands_stdout(news):
    out, _ = run("export_list", "News", "--output", "-", "--owner", "owner")

    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:2] == ["email", "phone"]
    assert [r[0] for r in rows[1:]] == ["ann@example.com", "bo@example.com"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["Ghost", "--owner", "owner"], "List 'Ghost' not found"),
        (["News", "--owner", "nobody-here"], "User 'nobody-here' not found"),
        (["News", "--owner", "outsider"], "List 'News' not found"),
    ],
)
def test_export_list_refuses_a_list_the_owner_does_not_have(news, outsider, tmp_path, args, message):
    target = tmp_path / "out.csv"

    with pytest.raises(CommandError, match=message):
        run("export_list", args[0], "--output", str(target), *args[1:])

    assert not target.exists()
    assert not AuditLog.objects.exists()


# A name typed in a shell that is not UTF-8 reaches the command with a lone surrogate for each byte
# it could not decode (b"\xe9" here).
NOT_UTF8 = b"N\xe9ws".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    "args, message",
    [([NOT_UTF8, "--owner", "owner"], "List 'N\ufffdws' not found"),
     (["News", "--owner", NOT_UTF8], "User 'N\ufffdws' not found")],
)
def test_export_list_names_given_in_another_encoding_are_not_found(news, tmp_path, args, message):
    target = tmp_path / "out.csv"

    with pytest.raises(CommandError, match=f"^{message}$"):
        run("export_list", args[0], "--output", str(target), *args[1:])

    assert not target.exists() and not AuditLog.objects.exists()


@pytest.mark.parametrize("where", ["missing/out.csv", "."])
def test_export_list_to_a_file_it_cannot_write_is_refused_and_not_recorded(news, tmp_path, where):
    target = tmp_path / where

    with pytest.raises(CommandError) as refused:
        run("export_list", "News", "--output", str(target), "--owner", "owner")

    assert str(refused.value) in (f"--output {target}: No such file or directory", f"--output {target}: Is a directory")
    assert not AuditLog.objects.exists()


# --- create_api_token ----------------------------------------------------------------------------


def test_create_api_token_prints_only_a_token_that_authenticates(owner):
    out, _ = run("create_api_token", "owner")

    token = out.strip()
    assert out == token + "\n"
    assert " " not in token and len(token) >= 32
    stored = AuthToken.objects.get(user=owner)
    assert stored.digest != token  # only a digest is kept
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(LISTS).status_code == 200


def test_create_api_token_is_audited(owner):
    run("create_api_token", "owner")

    row = AuditLog.objects.get(entity_type="api_token")
    assert (row.action, row.actor, row.owner) == ("create", None, owner)


def test_create_api_token_honours_the_expiry(owner):
    run("create_api_token", "owner", "--expiry-days", "3")

    stored = AuthToken.objects.get(user=owner)
    lifetime = stored.expiry - stored.created
    assert 2.9 < lifetime.total_seconds() / 86400 <= 3.0


@pytest.mark.parametrize(
    "args, message",
    [(["ghost"], "No active user named 'ghost'"), (["owner", "--expiry-days", "0"], "--expiry-days must be positive"),
     ([NOT_UTF8], "No active user named 'N\ufffdws'"),
     (["owner", "--expiry-days", "99999999999"], "--expiry-days must be at most 36,500")],
)
def test_create_api_token_refuses_bad_input(owner, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_api_token", *args)

    assert not AuthToken.objects.exists()


def test_a_bogus_token_is_refused_with_401(owner):
    run("create_api_token", "owner")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert client.get(LISTS).status_code == 401


# --- bootstrap -----------------------------------------------------------------------------------


def test_bootstrap_creates_the_operators_group_and_the_first_superuser(db, monkeypatch):
    monkeypatch.setenv("INBOXERR_ADMIN_USER", "boss")
    monkeypatch.setenv("INBOXERR_ADMIN_PASSWORD", "a-long-enough-secret")

    out, _ = run("bootstrap")

    boss = get_user_model().objects.get(username="boss")
    assert boss.is_superuser and boss.is_staff
    assert boss.check_password("a-long-enough-secret")
    assert "Created superuser 'boss' with password: a-long-enough-secret" in out
    operators = Group.objects.get(name="Operators")
    assert operators.permissions.filter(codename="delete_subscriberlist").exists()
    assert operators.permissions.filter(codename="view_auditlog").exists()
    assert AuditLog.objects.filter(action="create", entity_type="user", entity_id=str(boss.pk)).exists()


def test_bootstrap_generates_and_prints_a_password_when_none_is_given(db, monkeypatch):
    monkeypatch.delenv("INBOXERR_ADMIN_USER", raising=False)
    monkeypatch.delenv("INBOXERR_ADMIN_PASSWORD", raising=False)

    out, _ = run("bootstrap")

    password = out.strip().rsplit(": ", 1)[1]
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_bootstrap_run_twice_leaves_the_superuser_alone(db, monkeypatch):
    monkeypatch.setenv("INBOXERR_ADMIN_PASSWORD", "first-password-123")
    run("bootstrap", "--username", "boss")
    monkeypatch.setenv("INBOXERR_ADMIN_PASSWORD", "second-password-456")

    out, _ = run("bootstrap", "--username", "boss")

    assert out.strip() == "Superuser 'boss' already exists (password unchanged)."
    assert get_user_model().objects.get(username="boss").check_password("first-password-123")
    assert get_user_model().objects.filter(username="boss").count() == 1


def test_bootstrap_refuses_a_name_that_cannot_be_stored(db, monkeypatch):
    monkeypatch.delenv("INBOXERR_ADMIN_PASSWORD", raising=False)

    with pytest.raises(CommandError, match=r"^username: contains a lone surrogate \(invalid Unicode\), which cannot be stored$"):
        run("bootstrap", "--username", NOT_UTF8)

    assert not get_user_model().objects.exists() and not AuditLog.objects.exists()
