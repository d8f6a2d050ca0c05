"""DELETE /api/v1/subscribers/lists/{list_name}: seed 000's safe list deletion."""

import pytest

from audit.models import AuditLog
from imports.models import ImportJob
from subscribers.models import Subscriber, SubscriberList
from subscribers.tests.helpers import AUDIT, PERMISSION_DENIED, add, db_state, list_url, make_list


@pytest.fixture
def news(owner):
    lst = make_list(owner, "Newsletter")
    for n in range(3):
        add(lst, email=f"reader{n}@example.com")
    return lst


def job_for(subscriber_list, status: str, **kwargs) -> ImportJob:
    return ImportJob.objects.create(
        owner=subscriber_list.owner, list=subscriber_list, list_name=subscriber_list.name, status=status, **kwargs
    )


def test_owner_deletes_a_list_and_gets_the_seeds_response(api, news):
    response = api.delete(f"{list_url('Newsletter')}?reason=cleanup")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"success", "message", "deletion_summary", "cleanup_actions", "performance"}
    assert body["success"] is True
    assert body["message"] == "List 'Newsletter' deleted successfully"
    summary = body["deletion_summary"]
    assert set(summary) == {"list_name", "subscribers_deleted", "deletion_time_seconds", "reason"}
    assert (summary["list_name"], summary["subscribers_deleted"], summary["reason"]) == ("Newsletter", 3, "cleanup")
    assert isinstance(summary["deletion_time_seconds"], (int, float))
    assert body["cleanup_actions"] == {
        "jobs_cancelled": 0, "chunk_files_cleaned": 0, "job_records_cleaned": 0, "audit_logged": True,
    }
    assert set(body["performance"]) == {"records_per_second", "was_large_operation"}
    assert body["performance"]["was_large_operation"] is False
    assert isinstance(body["performance"]["records_per_second"], int)


def test_deleting_a_list_removes_it_and_its_subscribers_and_writes_one_audit_row(api, news, owner):
    other = make_list(owner, "Keep")
    kept = add(other, email="reader0@example.com")

    api.delete(f"{list_url('Newsletter')}?reason=cleanup")

    assert not SubscriberList.objects.filter(pk=news.pk).exists()
    assert list(Subscriber.objects.values_list("pk", flat=True)) == [kept.pk]
    other.refresh_from_db()
    assert other.subscriber_count == 1
    row = AuditLog.objects.get()
    assert (row.action, row.entity_type, row.entity_id, row.actor, row.owner) == (
        "delete", "list", str(news.pk), owner, owner,
    )
    assert row.before["name"] == "Newsletter"
    assert row.metadata["reason"] == "cleanup"
    assert row.metadata["subscribers_deleted"] == 3


@pytest.mark.parametrize("status", ["processing", "pending"])
def test_a_list_with_an_active_import_is_not_deleted_without_force(api, news, status):
    job_for(news, status)
    before = db_state()

    response = api.delete(list_url("Newsletter"))

    assert response.status_code == 409
    body = response.json()
    assert "force=true" in body["detail"]
    assert body["field"] == "force"
    assert body["active_jobs"] == 1
    assert db_state() == before


def test_force_cancels_active_imports_and_clears_the_job_records(api, news):
    job_for(news, "processing")
    job_for(news, "completed")

    response = api.delete(f"{list_url('Newsletter')}?force=true")

    assert response.status_code == 200
    assert response.json()["cleanup_actions"]["jobs_cancelled"] == 1
    assert response.json()["cleanup_actions"]["job_records_cleaned"] == 2
    assert not ImportJob.objects.exists()
    assert not SubscriberList.objects.exists()
    assert AuditLog.objects.get().metadata["jobs_cancelled"] == 1


def test_finished_imports_do_not_block_a_deletion(api, news):
    job_for(news, "completed")
    job_for(news, "failed")

    response = api.delete(list_url("Newsletter"))

    assert response.status_code == 200
    assert response.json()["cleanup_actions"]["jobs_cancelled"] == 0
    assert response.json()["cleanup_actions"]["job_records_cleaned"] == 2


def test_an_active_import_on_another_list_does_not_block_a_deletion(api, news, owner):
    job_for(make_list(owner, "Other"), "processing")

    response = api.delete(list_url("Newsletter"))

    assert response.status_code == 200
    assert ImportJob.objects.get().status == "processing"


def test_waiting_upload_files_are_removed_once_the_deletion_commits(
    api, news, tmp_path, django_capture_on_commit_callbacks
):
    waiting = tmp_path / "upload.csv"
    waiting.write_text("email\nx@example.com\n")
    job_for(news, "failed", file_path=str(waiting))

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(list_url("Newsletter"))

    assert response.json()["cleanup_actions"]["chunk_files_cleaned"] == 1
    assert not waiting.exists()


def test_a_list_above_the_threshold_needs_force(api, news, settings):
    settings.LIST_DELETE_CONFIRM_THRESHOLD = 2
    before = db_state()

    response = api.delete(list_url("Newsletter"))

    assert response.status_code == 409
    body = response.json()
    assert "force=true" in body["detail"]
    assert body["field"] == "force"
    assert body["requires_confirmation"] is True
    assert body["subscriber_count"] == 3
    assert db_state() == before


def test_force_deletes_a_list_above_the_threshold_as_a_large_operation(api, news, settings):
    settings.LIST_DELETE_CONFIRM_THRESHOLD = 2

    response = api.delete(f"{list_url('Newsletter')}?force=true&reason=too+big")

    assert response.status_code == 200
    assert response.json()["performance"]["was_large_operation"] is True
    assert response.json()["deletion_summary"]["reason"] == "too big"
    assert not Subscriber.objects.exists()


def test_a_list_at_the_threshold_is_deleted_without_force(api, owner, settings):
    settings.LIST_DELETE_CONFIRM_THRESHOLD = 2
    lst = make_list(owner, "Pair")
    add(lst)
    add(lst)

    response = api.delete(list_url("Pair"))

    assert response.status_code == 200
    assert response.json()["performance"]["was_large_operation"] is False


def test_force_must_be_a_boolean(api, news):
    before = db_state()

    response = api.delete(f"{list_url('Newsletter')}?force=maybe")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("force:")
    assert db_state() == before


def test_deleting_a_missing_list_gives_404(api, news):
    before = db_state()

    response = api.delete(list_url("Nowhere"))

    assert response.status_code == 404
    assert response.json() == {"detail": "List 'Nowhere' not found", "field": "list_name"}
    assert db_state() == before


def test_outsider_cannot_delete_a_list_and_learns_nothing(outsider_api, news):
    before = db_state()

    response = outsider_api.delete(f"{list_url('Newsletter')}?force=true")

    assert response.status_code == 404
    assert response.json() == {"detail": "List 'Newsletter' not found", "field": "list_name"}
    assert db_state() == before


def test_outsider_deleting_their_own_list_of_the_same_name_leaves_the_owners_alone(outsider_api, news, outsider):
    make_list(outsider, "Newsletter")

    response = outsider_api.delete(list_url("Newsletter"))

    assert response.status_code == 200
    assert list(SubscriberList.objects.values_list("pk", flat=True)) == [news.pk]
    assert Subscriber.objects.count() == 3


def test_superuser_deletes_an_owners_list_and_the_owner_sees_it_in_the_trail(
    superuser_api, api, news, superuser, owner
):
    response = superuser_api.delete(f"{list_url('Newsletter')}?owner=owner")

    assert response.status_code == 200
    row = AuditLog.objects.get()
    assert (row.actor, row.owner) == (superuser, owner)
    trail = api.get(AUDIT).json()["logs"]
    assert [(log["action"], log["entity_type"], log["actor"]) for log in trail] == [("delete", "list", "root")]


def test_anonymous_caller_cannot_delete_a_list(anon_api, news):
    before = db_state()

    assert anon_api.delete(f"{list_url('Newsletter')}?force=true").status_code == 401
    assert db_state() == before


def test_user_without_permissions_cannot_delete_a_list(no_perms_api, news):
    before = db_state()

    response = no_perms_api.delete(f"{list_url('Newsletter')}?force=true")

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
    assert db_state() == before
