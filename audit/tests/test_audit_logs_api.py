"""GET /api/v1/subscribers/audit/logs: the trail, newest first, filtered and paged."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from audit.models import AuditLog
from subscribers.tests.helpers import AUDIT, BASE, PERMISSION_DENIED

LOG_KEYS = {"id", "actor", "action", "entity_type", "entity_id", "user_action", "before", "after", "metadata", "created_at"}


def log(*, owner, action="update", entity_type="subscriber", at=None, actor=None, **kwargs) -> AuditLog:
    row = AuditLog.objects.create(
        owner=owner, actor=actor or owner, action=action, entity_type=entity_type,
        user_action=f"{action} {entity_type}", **kwargs,
    )
    if at is not None:  # created_at is auto_now_add: move it afterwards
        AuditLog.objects.filter(pk=row.pk).update(created_at=at)
        row.refresh_from_db()
    return row


@pytest.fixture
def trail(owner, outsider):
    day = datetime(2025, 10, 7, 12, 0, tzinfo=dt_timezone.utc)
    return {
        "old_list": log(owner=owner, action="create", entity_type="list", at=day - timedelta(days=10)),
        "sub_update": log(owner=owner, action="update", entity_type="subscriber", at=day - timedelta(days=1)),
        "sub_delete": log(owner=owner, action="delete", entity_type="subscriber", at=day),
        "export": log(owner=owner, action="export", entity_type="list", at=day + timedelta(hours=3)),
        "theirs": log(owner=outsider, action="delete", entity_type="list", at=day),
    }


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["logs"]]


def test_owner_reads_their_trail_newest_first_in_the_seeds_shape(api, trail):
    response = api.get(AUDIT)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"logs", "total_count", "has_more"}
    assert (body["total_count"], body["has_more"]) == (4, False)
    assert ids(response) == [trail[k].pk for k in ("export", "sub_delete", "sub_update", "old_list")]
    assert set(body["logs"][0]) == LOG_KEYS
    assert (body["logs"][0]["action"], body["logs"][0]["entity_type"], body["logs"][0]["actor"]) == (
        "export", "list", "owner",
    )


def test_outsider_sees_none_of_the_owners_rows(outsider_api, trail):
    response = outsider_api.get(AUDIT)

    assert ids(response) == [trail["theirs"].pk]
    assert response.json()["total_count"] == 1


def test_superuser_reads_the_whole_trail(superuser_api, trail):
    assert superuser_api.get(AUDIT).json()["total_count"] == 5


def test_owner_sees_what_others_did_to_their_data(api, trail, owner, superuser):
    row = log(owner=owner, actor=superuser, action="delete", entity_type="list")

    response = api.get(AUDIT, {"limit": 1})

    assert ids(response) == [row.pk]
    assert response.json()["logs"][0]["actor"] == "root"


def test_a_row_written_by_the_api_is_in_the_trail_with_the_callers_ip(api, db):
    api.post(BASE, {"list": "News", "email": "ann@example.com"}, format="json")

    logs = api.get(AUDIT, {"entity_type": "subscriber"}).json()["logs"]

    assert [(r["action"], r["entity_type"]) for r in logs] == [("create", "subscriber")]
    assert logs[0]["metadata"] == {"source": "api", "ip": "127.0.0.1", "list_name": "News"}
    assert logs[0]["after"]["email"] == "ann@example.com"


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"entity_type": "list"}, ["export", "old_list"]),
        ({"action": "delete"}, ["sub_delete"]),
        ({"entity_type": "subscriber", "action": "update"}, ["sub_update"]),
        ({"entity_type": "campaign"}, []),
        ({"start_date": "2025-10-07T00:00:00Z"}, ["export", "sub_delete"]),
        ({"end_date": "2025-10-06T23:59:59Z"}, ["sub_update", "old_list"]),
        ({"start_date": "2025-10-06T00:00:00Z", "end_date": "2025-10-07T12:00:00Z"}, ["sub_delete", "sub_update"]),
        ({"start_date": "2025-10-07T14:00:00+02:00"}, ["export", "sub_delete"]),
    ],
)
def test_the_trail_filters_by_entity_type_action_and_dates(api, trail, params, expected):
    response = api.get(AUDIT, params)

    assert response.status_code == 200
    assert ids(response) == [trail[k].pk for k in expected]
    assert response.json()["total_count"] == len(expected)


def test_a_date_only_range_covers_the_whole_of_each_day(api, trail):
    # "ISO 8601 date": end_date=2025-10-07 must include the rows of the 7th (12:00 and 15:00).
    response = api.get(AUDIT, {"start_date": "2025-10-07", "end_date": "2025-10-07"})

    assert response.status_code == 200
    assert ids(response) == [trail["export"].pk, trail["sub_delete"].pk]


def test_skip_and_limit_page_through_the_trail(api, trail):
    first = api.get(AUDIT, {"limit": 3})
    rest = api.get(AUDIT, {"limit": 3, "skip": 3})
    past = api.get(AUDIT, {"skip": 10})

    assert (ids(first), first.json()["has_more"], first.json()["total_count"]) == (
        [trail[k].pk for k in ("export", "sub_delete", "sub_update")], True, 4,
    )
    assert (ids(rest), rest.json()["has_more"]) == ([trail["old_list"].pk], False)
    assert (ids(past), past.json()["has_more"], past.json()["total_count"]) == ([], False, 4)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2025-13-45"}, "end_date"),
        ({"start_date": "2025-10-08T00:00:00Z", "end_date": "2025-10-01T00:00:00Z"}, "end_date"),
        ({"limit": 0}, "limit"),
        ({"limit": 500}, "limit"),
        ({"skip": -1}, "skip"),
        ({"skip": "many"}, "skip"),
    ],
)
def test_bad_trail_parameters_are_refused_naming_the_parameter(api, trail, params, field):
    before = AuditLog.objects.count()

    response = api.get(AUDIT, params)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    assert field in response.json()["errors"]
    assert AuditLog.objects.count() == before


def test_an_absurd_skip_is_refused_naming_skip_rather_than_failing(api, trail):
    # OFFSET past PostgreSQL's bigint: a 400 naming the parameter, not a 500.
    api.raise_request_exception = False

    response = api.get(AUDIT, {"skip": 10**19})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("skip:")


def test_reading_the_trail_writes_nothing_to_it(api, trail):
    api.get(AUDIT)

    assert AuditLog.objects.count() == 5


def test_anonymous_caller_cannot_read_the_trail(anon_api, trail):
    response = anon_api.get(AUDIT)

    assert response.status_code == 401
    assert "logs" not in response.json()


def test_user_without_permissions_cannot_read_the_trail(no_perms_api, trail):
    response = no_perms_api.get(AUDIT)

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED


def test_rows_with_no_actor_read_as_the_system(superuser_api, db):
    AuditLog.objects.create(actor=None, action="delete", entity_type="audit_log", user_action="purge")

    row = superuser_api.get(AUDIT).json()["logs"][0]

    assert row["actor"] is None
    assert timezone.now() - datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")) < timedelta(minutes=5)
