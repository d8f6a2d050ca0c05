"""GET /api/v1/tasks/{id}: any background job by the id its 202 gave, described the same way."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from campaigns import bulk_email, services
from campaigns.models import Campaign, CampaignStatus
from imports.models import ImportJob, ImportStatus
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db

TASK_FIELDS = {"id", "kind", "status", "progress", "result", "rate", "rate_unit", "eta_seconds", "error", "created_at",
               "updated_at", "started_at", "finished_at", "links"}


def task_url(task_id) -> str:
    return f"/api/v1/tasks/{task_id}"


def _import(owner, **fields) -> ImportJob:
    defaults = {"list_name": "News", "status": ImportStatus.PROCESSING, "total_rows": 1000, "processed_rows": 400,
                "created": 380, "duplicates": 15, "invalid": 5, "progress": 40.0, "heartbeat_at": timezone.now(),
                "started_at": timezone.now()}
    return ImportJob.objects.create(owner=owner, **{**defaults, **fields})


@pytest.fixture
def news(owner):
    lst = SubscriberListFactory(owner=owner, name="News")
    SubscriberFactory(list=lst, email="ann@x.io", name="Ann")
    SubscriberFactory(list=lst, email="bob@x.io", name="Bob")
    return lst


def _campaign(owner) -> Campaign:
    return services.campaign_create(actor=Actor(user=owner, source="api"), owner=owner, name="Hello", channel="email",
                                    subject="Hi", message_content="Hello {{ name }}", list_names=["News"])


def _bulk_job(owner) -> Campaign:
    return bulk_email.bulk_reminder_start(actor=Actor(user=owner, source="api"), owner=owner,
                                          emails=["a@x.io", "b@x.io"], term="Fall")


def test_an_import_is_tracked_with_its_counts(api, owner):
    job = _import(owner)
    response = api.get(task_url(job.pk))
    assert response.status_code == 200
    data = response.json()
    assert set(data) == TASK_FIELDS
    assert (data["id"], data["kind"], data["status"], data["progress"], data["error"]) == (
        str(job.pk), "import", "processing", 40.0, None)
    assert data["result"] == {"total_rows": 1000, "processed_rows": 400, "created": 380, "updated": 0,
                              "duplicates": 15, "invalid": 5, "warnings": 0, "report_lines": 5}
    assert data["links"] == {"self": f"/api/v1/tasks/{job.pk}", "detail": f"/api/v1/imports/{job.pk}",
                             "errors": f"/api/v1/imports/{job.pk}/errors"}


def test_a_stuck_or_failed_import_is_still_found_and_says_so(api, owner):
    stuck = _import(owner, heartbeat_at=timezone.now() - timedelta(hours=2))
    failed = _import(owner, status=ImportStatus.FAILED, error_message="row 2: not a CSV file")
    assert api.get(task_url(stuck.pk)).json()["status"] == "stuck"
    data = api.get(task_url(failed.pk)).json()
    assert (data["status"], data["error"]) == ("failed", "row 2: not a CSV file")


def test_the_task_id_a_campaign_start_answers_with_is_tracked(api, owner, news):
    campaign = _campaign(owner)
    response = api.post(f"/api/v1/campaigns/{campaign.pk}/start")
    assert response.status_code == 202
    data = api.get(task_url(response.json()["task_id"])).json()
    assert (data["kind"], data["status"], data["progress"]) == ("campaign", "starting", 0.0)
    services.campaign_fan_out(campaign_id=campaign.pk)
    data = api.get(task_url(campaign.pk)).json()
    assert data["status"] == "running"
    assert data["result"] == {"total": 2, "sent": 0, "failed": 0, "skipped": 0, "unknown": 0, "pending": 2}
    assert data["links"]["detail"] == f"/api/v1/campaigns/{campaign.pk}"


def test_a_cancelled_campaign_is_still_found(api, owner, news):
    campaign = _campaign(owner)
    services.campaign_cancel(actor=Actor(user=owner, source="api"), campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status_reason="stopped by hand")
    data = api.get(task_url(campaign.pk)).json()
    assert (data["status"], data["error"]) == ("cancelled", "stopped by hand")


def test_a_bulk_email_job_is_tracked_in_its_own_words(api, owner):
    job = _bulk_job(owner)
    data = api.get(task_url(job.pk)).json()
    assert (data["kind"], data["status"], data["progress"], data["error"]) == ("bulk_email", "running", 0.0, None)
    assert data["result"] == {"recipient_count": 2, "emails_sent": 0, "emails_failed": 0, "emails_pending": 2,
                              "skipped": 0}
    assert data["links"]["detail"] == f"/api/v1/bulk-email/job-status/{job.pk}"
    Campaign.objects.filter(pk=job.pk).update(status=CampaignStatus.COMPLETED, sent_count=2,
                                               finished_at=timezone.now())
    data = api.get(task_url(job.pk)).json()
    assert (data["status"], data["progress"]) == ("completed", 100.0)


def test_unknown_ids_are_not_found(api, owner):
    _import(owner)
    for task_id in (uuid.uuid4(), "not-a-uuid", "123"):
        response = api.get(task_url(task_id))
        assert response.status_code == 404
        assert response.json() == {"detail": f"Task '{task_id}' not found"}


def test_outsider_cannot_see_anyone_elses_task(outsider_api, owner, news):
    for task in (_import(owner), _campaign(owner), _bulk_job(owner)):
        response = outsider_api.get(task_url(task.pk))
        assert response.status_code == 404
        assert response.json() == {"detail": f"Task '{task.pk}' not found"}


def test_superuser_sees_every_owners_tasks(superuser_api, owner):
    assert superuser_api.get(task_url(_import(owner).pk)).json()["kind"] == "import"
    assert superuser_api.get(task_url(_bulk_job(owner).pk)).json()["kind"] == "bulk_email"


def test_anonymous_is_refused(anon_api, owner):
    assert anon_api.get(task_url(_import(owner).pk)).status_code == 401


def test_an_owner_without_the_view_permission_for_that_kind_is_refused(no_perms_api, no_perms_user):
    job = _import(no_perms_user)
    bulk = Campaign.objects.create(owner=no_perms_user, kind="bulk_email", name="Reminder", status="running")
    assert no_perms_api.get(task_url(job.pk)).status_code == 403
    assert no_perms_api.get(task_url(bulk.pk)).status_code == 403
    no_perms_user.user_permissions.add(Permission.objects.get(codename="view_importjob"))
    no_perms_api.force_authenticate(type(no_perms_user).objects.get(pk=no_perms_user.pk))  # fresh permission cache
    assert no_perms_api.get(task_url(job.pk)).status_code == 200
    assert no_perms_api.get(task_url(bulk.pk)).status_code == 403


def test_a_user_without_permissions_learns_nothing_about_others_tasks(no_perms_api, owner):
    assert no_perms_api.get(task_url(_import(owner).pk)).status_code == 404
