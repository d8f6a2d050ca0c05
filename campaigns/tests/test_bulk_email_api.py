"""Seed 004's bulk email API: its 11 tests by behaviour, plus ownership, permissions, recipients
(dedupe, suppression, skipped reasons), templates and cancel."""

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from audit.models import AuditLog
from campaigns import bulk_email
from campaigns.models import Campaign, CampaignKind, CampaignStatus, Message, MessageStatus, MessageTemplate
from inboxerr.accounts import roles_ensure
from inboxerr.actors import Actor
from inboxerr.tests.factories import UserFactory
from subscribers.models import Suppression
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db

SEND_URL = "/api/v1/bulk-email/send-reminders"
SEED_SEND_URL = "/api/v1/bulk-email/send-instructor-reminders"
RECENT_URL = "/api/v1/bulk-email/recent-jobs"
JOB_FIELDS = {
    "id", "job_type", "status", "recipient_count", "emails_sent", "emails_failed", "emails_pending",
    "progress_percentage", "created_at", "started_at", "completed_at", "personal_message", "failed_recipients",
    "error_message",
}


def status_url(job_id) -> str:
    return f"/api/v1/bulk-email/job-status/{job_id}"


def cancel_url(job_id) -> str:
    return f"/api/v1/bulk-email/jobs/{job_id}/cancel"


@pytest.fixture
def operators_group(db):
    # The permission comes from a data migration; a transactional test earlier in the run
    # flushes the database, and Django's flush recreates only Meta-declared permissions.
    Permission.objects.get_or_create(
        codename="send_bulk_email", content_type=ContentType.objects.get_for_model(Campaign),
        defaults={"name": "Can send bulk email jobs"},
    )
    return roles_ensure()


@pytest.fixture
def instructors(owner):
    lst = SubscriberListFactory(owner=owner, name="Instructors")
    return [
        SubscriberFactory(list=lst, email="ada@uni.edu", name="Ada"),
        SubscriberFactory(list=lst, email="bea@uni.edu", name="Bea"),
    ]


@pytest.fixture
def viewer(db):
    """May read campaigns but not send bulk email."""
    user = UserFactory(username="viewer")
    user.user_permissions.add(Permission.objects.get(codename="view_campaign", content_type__app_label="campaigns"))
    return user


def start_job(user, **kwargs) -> Campaign:
    kwargs.setdefault("emails", ["one@x.io", "two@x.io", "three@x.io"])
    kwargs.setdefault("personal_message", "Please submit by Friday")
    kwargs.setdefault("term", "Fall 2024")
    kwargs.setdefault("deadline", "2024-12-31")
    return bulk_email.bulk_reminder_start(actor=Actor(user=user, source="api"), owner=user, **kwargs)


# --- The seed's 11 tests -------------------------------------------------------------------------


def test_send_reminders_success(api, owner, instructors, django_capture_on_commit_callbacks):
    body = {"subscriber_ids": [s.pk for s in instructors], "emails": ["Cy@Uni.edu"],
            "personal_message": "Please submit by Friday", "term": "Fall 2024", "deadline": "2024-12-31"}
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(SEND_URL, body, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert set(data) == {"success", "job_id", "message", "recipient_count"}
    assert data["success"] is True and data["recipient_count"] == 3
    assert data["message"] == "Bulk reminder job started"
    job = Campaign.objects.get(pk=data["job_id"])
    assert (job.kind, job.status, job.owner, job.channel) == (CampaignKind.BULK_EMAIL, CampaignStatus.RUNNING, owner, "email")
    assert job.job_data == {"job_type": "reminder", "personal_message": "Please submit by Friday", "term": "Fall 2024",
                            "deadline": "2024-12-31"}
    assert (job.total_count, job.skipped_count) == (3, 0) and job.started_at is not None
    messages = list(Message.objects.filter(campaign=job).order_by("id"))
    assert [(m.recipient, m.status, m.subscriber_id) for m in messages] == [
        ("ada@uni.edu", "queued", instructors[0].pk), ("bea@uni.edu", "queued", instructors[1].pk), ("cy@uni.edu", "queued", None),
    ]
    assert messages[0].variables == {"personal_message": "Please submit by Friday", "term": "Fall 2024", "deadline": "2024-12-31"}
    assert job.template.name == bulk_email.BUILTIN_TEMPLATE_NAME and job.template.body_html
    assert len(callbacks) == 1  # the dispatchers are kicked once the job is committed
    assert AuditLog.objects.filter(entity_type="bulk_email_job", entity_id=str(job.pk), action="create").exists()


def test_send_reminders_missing_body(api):
    response = api.post(SEND_URL)
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert "give at least one of emails, subscriber_ids or list_names" in response.json()["detail"]
    assert not Campaign.objects.exists() and not Message.objects.exists()


def test_send_reminders_empty_list(api):
    response = api.post(SEED_SEND_URL, {"instructor_ids": []}, format="json")
    assert response.status_code == 400
    assert "give at least one of" in response.json()["detail"]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"instructor_ids": "abc"}, "instructor_ids"),
    ({"instructor_ids": ["id1"]}, "instructor_ids"),
    ({"emails": "a@x.io"}, "emails"),
    ({"emails": ["a@x.io"], "term": ["Fall"]}, "term"),
])
def test_send_reminders_invalid_type(api, body, field):
    response = api.post(SEND_URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert field in response.json()["errors"]
    assert not Campaign.objects.exists()


def test_send_reminders_body_that_is_not_an_object_is_refused(api):
    response = api.post(SEND_URL, ["a@x.io"], format="json")
    assert response.status_code == 400
    assert "Expected a dictionary" in response.json()["detail"]


def test_send_reminders_no_auth(anon_api):
    response = anon_api.post(SEND_URL, {"emails": ["a@x.io"]}, format="json")
    assert response.status_code == 401
    assert not Campaign.objects.exists()


def test_get_job_status_success(api, owner):
    job = start_job(owner)
    response = api.get(status_url(job.pk))
    assert response.status_code == 200
    data = response.json()
    assert data["success"] is True
    assert set(data["job"]) == JOB_FIELDS
    assert data["job"] | {"created_at": None, "started_at": None} == {
        "id": str(job.pk), "job_type": "reminder", "status": "running", "recipient_count": 3, "emails_sent": 0,
        "emails_failed": 0, "emails_pending": 3, "progress_percentage": 0, "created_at": None, "started_at": None,
        "completed_at": None, "personal_message": "Please submit by Friday", "failed_recipients": [], "error_message": None,
    }
    assert data["job"]["created_at"] and data["job"]["started_at"]


def test_get_job_status_not_found(api, owner):
    start_job(owner)
    for job_id in (uuid.uuid4(), "not-a-uuid"):
        response = api.get(status_url(job_id))
        assert response.status_code == 404
        assert response.json() == {"success": False, "detail": f"Job '{job_id}' not found"}


def test_get_job_status_no_auth(anon_api, owner):
    job = start_job(owner)
    assert anon_api.get(status_url(job.pk)).status_code == 401


def test_get_recent_jobs_success(api, owner):
    jobs = [start_job(owner, term=f"Term {n}") for n in range(3)]
    response = api.get(RECENT_URL)
    assert response.status_code == 200
    data = response.json()
    assert data["success"] is True and data["total"] == 3
    assert [job["id"] for job in data["jobs"]] == [str(job.pk) for job in reversed(jobs)]
    assert all(set(job) == JOB_FIELDS for job in data["jobs"])


def test_get_recent_jobs_with_limit(api, owner):
    jobs = [start_job(owner, term=f"Term {n}") for n in range(3)]
    data = api.get(RECENT_URL, {"limit": 2}).json()
    assert [job["id"] for job in data["jobs"]] == [str(jobs[2].pk), str(jobs[1].pk)]
    assert data["total"] == 3


def test_get_recent_jobs_limit_capped(api, owner):
    Campaign.objects.bulk_create(
        Campaign(owner=owner, kind=CampaignKind.BULK_EMAIL, name=f"Reminder {n}", status=CampaignStatus.COMPLETED,
                 job_data={"job_type": "reminder"})
        for n in range(bulk_email.RECENT_JOBS_MAX + 5)
    )
    data = api.get(RECENT_URL, {"limit": 500}).json()
    assert len(data["jobs"]) == bulk_email.RECENT_JOBS_MAX and data["total"] == bulk_email.RECENT_JOBS_MAX + 5
    assert len(api.get(RECENT_URL).json()["jobs"]) == bulk_email.RECENT_JOBS_DEFAULT


@pytest.mark.parametrize("limit", ["abc", "0", "-1"])
def test_recent_jobs_refuses_a_limit_that_is_not_a_positive_number(api, limit):
    response = api.get(RECENT_URL, {"limit": limit})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("limit:")


# --- The seed's own path, ownership, permissions -------------------------------------------------


def test_seed_path_takes_instructor_ids_as_subscriber_ids(api, instructors):
    response = api.post(SEED_SEND_URL, {"instructor_ids": [s.pk for s in instructors], "term": "Fall"}, format="json")
    assert response.status_code == 202
    job = Campaign.objects.get(pk=response.json()["job_id"])
    assert sorted(Message.objects.filter(campaign=job).values_list("recipient", flat=True)) == ["ada@uni.edu", "bea@uni.edu"]


def test_outsider_cannot_see_or_cancel_a_job(outsider_api, owner):
    job = start_job(owner)
    assert outsider_api.get(status_url(job.pk)).status_code == 404
    assert outsider_api.post(cancel_url(job.pk)).status_code == 404
    assert outsider_api.get(RECENT_URL).json() == {"success": True, "jobs": [], "total": 0}
    job.refresh_from_db()
    assert job.status == CampaignStatus.RUNNING


def test_outsider_cannot_send_to_the_owners_subscribers_or_lists(outsider_api, instructors):
    response = outsider_api.post(SEND_URL, {"subscriber_ids": [instructors[0].pk]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"subscriber_ids: not found: {instructors[0].pk}"
    response = outsider_api.post(SEND_URL, {"list_names": ["Instructors"]}, format="json")
    assert response.json()["detail"] == "list_names: not found: Instructors"
    assert not Campaign.objects.exists()


def test_superuser_sees_every_owners_jobs(superuser_api, owner):
    job = start_job(owner)
    assert superuser_api.get(status_url(job.pk)).json()["job"]["id"] == str(job.pk)
    assert superuser_api.get(RECENT_URL).json()["total"] == 1


def _every_route(job_id) -> list[tuple[str, str]]:
    return [("post", SEND_URL), ("post", SEED_SEND_URL), ("get", status_url(job_id)), ("get", RECENT_URL),
            ("post", cancel_url(job_id))]


def test_user_without_permissions_is_refused_on_every_route(no_perms_api, owner):
    job = start_job(owner)
    for method, url in _every_route(job.pk):
        response = getattr(no_perms_api, method)(url, {"emails": ["a@x.io"]}, format="json")
        assert response.status_code == 403, url
        assert response.json()["success"] is False
    assert Campaign.objects.count() == 1


def test_anonymous_is_refused_on_every_route(anon_api, owner):
    job = start_job(owner)
    for method, url in _every_route(job.pk):
        assert getattr(anon_api, method)(url, {"emails": ["a@x.io"]}, format="json").status_code == 401, url


def test_sending_needs_the_send_bulk_email_permission_not_just_campaign_access(viewer):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(viewer)
    assert client.post(SEND_URL, {"emails": ["a@x.io"]}, format="json").status_code == 403
    assert client.get(RECENT_URL).status_code == 200
    viewer.user_permissions.add(Permission.objects.get(codename="send_bulk_email"))
    viewer = type(viewer).objects.get(pk=viewer.pk)  # fresh permission cache
    client.force_authenticate(viewer)
    assert client.post(SEND_URL, {"emails": ["a@x.io"]}, format="json").status_code == 202


def test_operators_get_the_send_bulk_email_permission(owner):
    assert owner.has_perm("campaigns.send_bulk_email")


# --- Recipients ----------------------------------------------------------------------------------


def test_recipients_are_deduplicated_and_suppressed_ones_skipped_with_the_reason(api, owner, instructors):
    lst = instructors[0].list
    SubscriberFactory(list=lst, email="gone@uni.edu", status="unsubscribed")
    SubscriberFactory(list=lst, email="", phone="+14155552671", name="No email")
    Suppression.objects.create(owner=owner, channel="email", address="blocked@x.io", reason="manual")
    body = {"list_names": ["Instructors"], "subscriber_ids": [instructors[0].pk],
            "emails": ["ADA@uni.edu", "new@x.io", " new@x.io ", "Blocked@x.io"], "term": "Fall"}
    response = api.post(SEND_URL, body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["recipient_count"] == 3
    assert "3 recipients skipped" in response.json()["message"]
    job = Campaign.objects.get(pk=response.json()["job_id"])
    rows = set(Message.objects.filter(campaign=job).values_list("recipient", "status", "skip_reason"))
    assert rows == {
        ("ada@uni.edu", "queued", ""), ("bea@uni.edu", "queued", ""), ("new@x.io", "queued", ""),
        ("gone@uni.edu", "skipped", "unsubscribed"), ("", "skipped", "no_address"), ("blocked@x.io", "skipped", "suppressed"),
    }
    assert (job.total_count, job.skipped_count) == (6, 3)
    assert api.get(status_url(job.pk)).json()["job"]["emails_pending"] == 3


def test_invalid_addresses_are_named_and_nothing_is_stored(api):
    response = api.post(SEND_URL, {"emails": ["ok@x.io", "not-an-address", "also@bad"]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "emails: 'not-an-address' is not a valid email address; 'also@bad' is not a valid email address"
    )
    assert response.json()["field"] == "emails"
    assert not Campaign.objects.exists() and not Message.objects.exists() and not MessageTemplate.objects.exists()


def test_a_job_with_nothing_to_send_is_refused_and_not_kept(api, owner):
    Suppression.objects.create(owner=owner, channel="email", address="blocked@x.io", reason="unsubscribed")
    response = api.post(SEND_URL, {"emails": ["blocked@x.io"]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Nothing to send: all 1 recipients are skipped (1 suppressed)"
    assert not Campaign.objects.exists() and not Message.objects.exists()


# --- Templates -----------------------------------------------------------------------------------


def test_the_built_in_template_is_created_once_per_owner_and_kept_in_line_with_its_files(owner):
    first = start_job(owner)
    MessageTemplate.objects.filter(pk=first.template_id).update(body_text="edited by hand")
    second = start_job(owner)
    assert second.template_id == first.template_id
    template = MessageTemplate.objects.get(pk=first.template_id)
    assert template.body_text == bulk_email.reminder_template_source()["body_text"]
    assert MessageTemplate.objects.filter(owner=owner).count() == 1


def test_a_template_of_ones_own_can_replace_the_built_in_one(api, owner):
    template = MessageTemplate.objects.create(owner=owner, name="Mine", channel="email", subject="Due {{ deadline }}",
                                              body_text="{{ personal_message }}")
    response = api.post(SEND_URL, {"emails": ["a@x.io"], "template_id": template.pk, "deadline": "Friday"}, format="json")
    assert response.status_code == 202
    assert Campaign.objects.get(pk=response.json()["job_id"]).template == template


def test_unusable_templates_are_refused(api, owner, outsider):
    theirs = MessageTemplate.objects.create(owner=outsider, name="Theirs", channel="email", subject="s", body_text="x")
    sms = MessageTemplate.objects.create(owner=owner, name="Sms", channel="sms", body_text="x")
    inactive = MessageTemplate.objects.create(owner=owner, name="Old", channel="email", subject="s", body_text="x",
                                              is_active=False)
    fields = MessageTemplate.objects.create(owner=owner, name="Fields", channel="email", subject="s",
                                            body_text="{{ coupon }} {{ city|default:'-' }}")
    expected = {
        theirs.pk: f"template_id: template {theirs.pk} not found",
        sms.pk: "template_id: template 'Sms' is for sms, not email",
        inactive.pk: "template_id: template 'Old' is not active",
    }
    for template_id, detail in expected.items():
        response = api.post(SEND_URL, {"emails": ["a@x.io"], "template_id": template_id}, format="json")
        assert (response.status_code, response.json()["detail"]) == (400, detail)
    response = api.post(SEND_URL, {"emails": ["a@x.io"], "template_id": fields.pk}, format="json")
    assert response.status_code == 400 and response.json()["missing_fields"] == ["coupon"]
    assert not Campaign.objects.exists()


# --- Cancel and status mapping -------------------------------------------------------------------


def test_cancel_stops_the_queued_messages(api, owner):
    job = start_job(owner)
    response = api.post(cancel_url(job.pk))
    assert response.status_code == 200
    data = response.json()["job"]
    assert (data["status"], data["emails_pending"], data["progress_percentage"]) == ("cancelled", 0, 0)
    assert data["completed_at"] is not None
    assert set(Message.objects.filter(campaign=job).values_list("status", flat=True)) == {MessageStatus.CANCELLED}
    again = api.post(cancel_url(job.pk))
    assert again.status_code == 409 and again.json()["success"] is False


def test_a_finished_job_where_every_email_failed_is_reported_failed(api, owner):
    job = start_job(owner)
    Message.objects.filter(campaign=job).update(status=MessageStatus.FAILED, last_error="550 no such user")
    Campaign.objects.filter(pk=job.pk).update(status=CampaignStatus.COMPLETED, failed_count=3)
    data = api.get(status_url(job.pk)).json()["job"]
    assert (data["status"], data["emails_failed"], data["progress_percentage"]) == ("failed", 3, 100)
    assert data["error_message"] == "All 3 emails failed"
    assert data["failed_recipients"] == [{"email": f"{n}@x.io", "error": "550 no such user"} for n in ("one", "two", "three")]


def test_a_paused_job_is_running_and_says_why(api, owner):
    job = start_job(owner)
    Campaign.objects.filter(pk=job.pk).update(status=CampaignStatus.PAUSED, status_reason="failure rate 40% over 20%")
    data = api.get(status_url(job.pk)).json()["job"]
    assert (data["status"], data["error_message"]) == ("running", "failure rate 40% over 20%")
