"""A reminder job end to end: the API queues it, the dispatcher sends it to a real SMTP server on
loopback, job-status reports what happened, including a recipient the server refuses."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from campaigns import dispatch
from campaigns.models import Campaign, Message, MessageStatus
from campaigns.tests.conftest import Inbox
from campaigns.tests.smtp import serve_smtp
from inboxerr.accounts import roles_ensure
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)

SEND_URL = "/api/v1/bulk-email/send-reminders"
REFUSED = "gone@uni.edu"
BODY = {
    "personal_message": "Grades & syllabus, please <b>by Friday</b>",
    "term": "Fall 2024",
    "deadline": "2024-12-31",
}


@pytest.fixture
def operators_group(db):
    # Created by a data migration, so the flush after each transactional test removes it.
    Permission.objects.get_or_create(
        codename="send_bulk_email", content_type=ContentType.objects.get_for_model(Campaign),
        defaults={"name": "Can send bulk email jobs"},
    )
    return roles_ensure()


class RefusingInbox(Inbox):
    """Refuses one mailbox permanently at RCPT, as a server does for an address it does not have."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__()
        self.refused = refused

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def refusing_smtp_server(settings):
    inbox = RefusingInbox({REFUSED})
    with serve_smtp(inbox, settings):
        yield inbox


@pytest.fixture
def instructor(owner):
    lst = SubscriberListFactory(owner=owner, name="Instructors")
    return SubscriberFactory(list=lst, email="ada@uni.edu", name="Ada")


def _job(api, job_id) -> dict:
    response = api.get(f"/api/v1/bulk-email/job-status/{job_id}")
    assert response.status_code == 200
    return response.json()["job"]


def test_reminders_reach_each_recipient_as_text_and_html(api, instructor, smtp_server):
    body = {**BODY, "subscriber_ids": [instructor.pk], "emails": ["bea@uni.edu", "cy@uni.edu"]}
    response = api.post(SEND_URL, body, format="json")
    assert response.status_code == 202 and response.json()["recipient_count"] == 3
    job_id = response.json()["job_id"]

    assert dispatch.dispatch(run_seconds=10) == 3

    received = {rcpt[0]: message for rcpt, message in smtp_server.messages}
    assert set(received) == {"ada@uni.edu", "bea@uni.edu", "cy@uni.edu"}
    for address, message in received.items():
        assert message.is_multipart()
        assert message["Subject"] == "Reminder: submissions for Fall 2024 due by 2024-12-31"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "Grades & syllabus, please <b>by Friday</b>" in text  # text is not escaped
        assert "Grades &amp; syllabus, please &lt;b&gt;by Friday&lt;/b&gt;" in html  # HTML is
        for part in (text, html):
            assert "Fall 2024" in part and "2024-12-31" in part
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        uid = Message.objects.get(campaign_id=job_id, recipient=address).uid
        assert message["Message-ID"] == f"<{uid}@inboxerr.local>"
    assert received["ada@uni.edu"].get_body(("plain",)).get_content().startswith("Hello Ada,")
    assert received["bea@uni.edu"].get_body(("plain",)).get_content().startswith("Hello there,")

    job = _job(api, job_id)
    assert (job["status"], job["emails_sent"], job["emails_failed"], job["emails_pending"]) == ("completed", 3, 0, 0)
    assert job["progress_percentage"] == 100 and job["completed_at"] is not None
    assert job["failed_recipients"] == [] and job["error_message"] is None


def test_a_refused_recipient_is_failed_at_once_with_the_servers_reason(api, refusing_smtp_server):
    body = {**BODY, "emails": ["ada@uni.edu", REFUSED, "cy@uni.edu"]}
    job_id = api.post(SEND_URL, body, format="json").json()["job_id"]

    assert dispatch.dispatch(run_seconds=10) == 2

    assert sorted(rcpt[0] for rcpt, _ in refusing_smtp_server.messages) == ["ada@uni.edu", "cy@uni.edu"]
    refused = Message.objects.get(campaign_id=job_id, recipient=REFUSED)
    assert (refused.status, refused.attempts) == (MessageStatus.FAILED, 1)  # permanent: not retried
    job = _job(api, job_id)
    assert (job["status"], job["emails_sent"], job["emails_failed"], job["emails_pending"]) == ("completed", 2, 1, 0)
    assert job["progress_percentage"] == 100
    assert job["failed_recipients"] == [
        {"email": REFUSED, "error": f"recipient refused: 550 5.1.1 <{REFUSED}>: mailbox unavailable"}
    ]
    task = api.get(f"/api/v1/tasks/{job_id}").json()
    assert (task["kind"], task["status"], task["progress"]) == ("bulk_email", "completed", 100.0)
    assert task["result"]["emails_failed"] == 1
