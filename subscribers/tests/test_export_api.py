"""GET /api/v1/subscribers/lists/{list_name}/export: a streamed CSV with every field a column,
safe to open in a spreadsheet."""

import csv
import io

import pytest

from audit.models import AuditLog
from subscribers.tests.helpers import PERMISSION_DENIED, add, db_state, export_url, make_list

BASE_COLUMNS = ["email", "phone", "name", "status", "created_at", "updated_at"]


@pytest.fixture
def news(owner):
    lst = make_list(owner, "News Letter")
    add(
        lst,
        email="ann@example.com",
        phone="+15555550100",
        name="Ann",
        standard_fields={"first_name": "Ann", "country": "FR"},
        custom_fields={"plan": "premium", "points": 42},
    )
    add(
        lst,
        email="evil@example.com",
        name="=cmd|' /C calc'!A0",
        standard_fields={"company": "@SUM(A1:A9)"},
        custom_fields={"note": "=cmd", "balance": "-12.50", "formula": "+1+1", "minus": "-2+3+cmd|' /C calc'!A0"},
    )
    return lst


def read_csv(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def header(response) -> list[str]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return next(csv.reader(io.StringIO(text)))


def test_export_is_a_csv_attachment_named_after_the_list(api, news):
    response = api.get(export_url("News Letter"))

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="news-letter.csv"'


def test_header_has_every_standard_and_custom_field_used_on_the_list(api, news):
    columns = header(api.get(export_url("News Letter")))

    assert columns[:6] == BASE_COLUMNS
    assert set(columns[6:]) == {"first_name", "country", "company", "plan", "points", "note", "balance", "formula", "minus"}
    assert len(columns) == len(set(columns))


def test_rows_carry_each_subscribers_values_and_blanks_for_fields_they_lack(api, news):
    rows = read_csv(api.get(export_url("News Letter")))

    assert len(rows) == 2
    ann = rows[0]
    assert (ann["email"], ann["name"], ann["status"]) == ("ann@example.com", "Ann", "active")
    assert (ann["first_name"], ann["country"], ann["plan"], ann["points"]) == ("Ann", "FR", "premium", "42")
    assert ann["note"] == "" and ann["company"] == ""
    assert ann["created_at"].startswith(str(news.subscribers.get(email="ann@example.com").created_at.date()))


def test_cells_a_spreadsheet_would_evaluate_are_neutralised(api, news):
    evil = read_csv(api.get(export_url("News Letter")))[1]

    assert evil["name"] == "'=cmd|' /C calc'!A0"
    assert evil["note"] == "'=cmd"
    assert evil["company"] == "'@SUM(A1:A9)"
    assert evil["formula"] == "'+1+1"
    assert evil["minus"] == "'-2+3+cmd|' /C calc'!A0"


def test_plain_numbers_and_e164_phones_are_left_as_they_are(api, news):
    ann, evil = read_csv(api.get(export_url("News Letter")))

    assert ann["phone"] == "+15555550100"
    assert evil["balance"] == "-12.50"


def test_an_empty_list_exports_just_the_header(api, owner):
    make_list(owner, "Empty")

    response = api.get(export_url("Empty"))

    assert b"".join(response.streaming_content).decode() == ",".join(BASE_COLUMNS) + "\r\n"


def test_an_export_is_audited(api, news, owner):
    read_csv(api.get(export_url("News Letter")))

    row = AuditLog.objects.get(action="export")
    assert (row.entity_type, row.entity_id, row.actor, row.owner) == ("list", str(news.pk), owner, owner)
    assert "News Letter" in row.user_action


def test_outsider_cannot_export_a_list_and_nothing_is_audited(outsider_api, news):
    before = db_state()

    response = outsider_api.get(export_url("News Letter"))

    assert response.status_code == 404
    assert response.json() == {"detail": "List 'News Letter' not found", "field": "list_name"}
    assert db_state() == before


def test_exporting_a_missing_list_gives_404(api, news):
    response = api.get(export_url("Nowhere"))

    assert response.status_code == 404
    assert response.json()["field"] == "list_name"


def test_superuser_exports_any_owners_list(superuser_api, news, superuser, owner):
    rows = read_csv(superuser_api.get(export_url("News Letter")))

    assert len(rows) == 2
    row = AuditLog.objects.get(action="export")
    assert (row.actor, row.owner) == (superuser, owner)


def test_anonymous_caller_cannot_export(anon_api, news):
    before = db_state()

    assert anon_api.get(export_url("News Letter")).status_code == 401
    assert db_state() == before


def test_user_without_permissions_cannot_export(no_perms_api, news):
    before = db_state()

    response = no_perms_api.get(export_url("News Letter"))

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
    assert db_state() == before
