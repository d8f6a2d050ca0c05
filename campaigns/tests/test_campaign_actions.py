"""Start (202, set-based fan-out), pause, resume, cancel, retry-failed, test-send, preview and
dry-run, through the API, against a real SMTP server on loopback."""

import threading

import pytest

from audit.models import AuditLog
from campaigns import dispatch, services, tasks
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from campaigns.tests.conftest import Inbox
from campaigns.tests.smtp import serve_smtp
from inboxerr.actors import Actor
from subscribers.models import Suppression
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/campaigns"


class RefusingInbox(Inbox):
    """A real SMTP server that refuses the addresses in `refuse` at RCPT with the given reply."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def refusing_smtp(settings):
    inbox = RefusingInbox()
    with serve_smtp(inbox, settings):
        yield inbox


@pytest.fixture
def audience(owner):
    """Two lists: two reachable addresses (Ann is on both), and one of each reason to skip."""
    news = SubscriberListFactory(owner=owner, name="News")
    vip = SubscriberListFactory(owner=owner, name="VIP")
    subs = {
        "ann": SubscriberFactory(list=news, email="ann@x.io", name="Ann", custom_fields={"order_no": "A1"}),
        "bob": SubscriberFactory(list=news, email="bob@x.io", name="Bob", custom_fields={"order_no": "B2"}),
        "gone": SubscriberFactory(list=news, email="gone@x.io", status="unsubscribed"),
        "bounce": SubscriberFactory(list=news, email="bounce@x.io", status="bounced"),
        "idle": SubscriberFactory(list=news, email="idle@x.io", status="inactive"),
        "blocked": SubscriberFactory(list=news, email="blocked@x.io"),
        "nowhere": SubscriberFactory(list=news, email="", phone="+14155552671"),
        "ann_vip": SubscriberFactory(list=vip, email="ann@x.io", name="Ann again", custom_fields={"order_no": "A9"}),
    }
    Suppression.objects.create(owner=owner, channel="email", address="blocked@x.io", reason="manual")
    return subs


def _create(api, **fields) -> dict:
    body = {"name": "Spring", "channel": "email", "subject": "Hi {{ name }}",
            "message_content": "Your order {{ order_no }}.", "list_names": ["News", "VIP"], **fields}
    response = api.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _started(api, **fields) -> dict:
    """Create and start a campaign, then run the fan-out task the start queued."""
    campaign = _create(api, **fields)
    response = api.post(f"{URL}/{campaign['id']}/start")
    assert response.status_code == 202, response.content
    tasks.fan_out(response.json()["task_id"])
    return campaign


def _status(campaign_id) -> str:
    return Campaign.objects.get(pk=campaign_id).status


def _statuses(campaign_id) -> dict[str, str]:
    return dict(Message.objects.filter(campaign_id=campaign_id).values_list("recipient", "status"))


# --- Start and fan-out ---------------------------------------------------------------------------


def test_start_answers_202_at_once_with_a_task_id(api, owner, audience):
    campaign = _create(api)
    response = api.post(f"{URL}/{campaign['id']}/start")
    assert response.status_code == 202
    body = response.json()
    assert body["task_id"] == campaign["id"] and body["status"] == "starting"
    assert not Message.objects.exists()  # the fan-out runs on a worker
    task = api.get(f"/api/v1/tasks/{body['task_id']}")
    assert task.status_code == 200 and (task.json()["kind"], task.json()["status"]) == ("campaign", "starting")
    row = AuditLog.objects.get(entity_type="campaign", entity_id=campaign["id"], before__status="draft")
    assert (row.after, row.actor_id, row.metadata["source"]) == ({"status": "starting"}, owner.pk, "api")


def test_fan_out_dedupes_by_address_and_skips_with_the_reason(api, audience):
    campaign = _started(api)
    messages = Message.objects.filter(campaign_id=campaign["id"])
    assert messages.count() == 7  # ann@x.io once across both lists
    assert sorted(messages.filter(status="queued").values_list("recipient", flat=True)) == ["ann@x.io", "bob@x.io"]
    skipped = {m.subscriber_id: m.skip_reason for m in messages.filter(status="skipped")}
    assert skipped == {
        audience["gone"].pk: "unsubscribed", audience["bounce"].pk: "bounced", audience["idle"].pk: "inactive",
        audience["blocked"].pk: "suppressed", audience["nowhere"].pk: "no_address",
    }
    assert messages.get(recipient="ann@x.io").subscriber_id == audience["ann"].pk
    assert AuditLog.objects.filter(entity_type="campaign", user_action__contains="queued 2 messages (5 skipped)").exists()


def test_campaign_shows_counts_and_progress_as_it_is_sent(api, audience, smtp_server):
    campaign = _started(api)
    body = api.get(f"{URL}/{campaign['id']}").json()
    assert body["status"] == "running"
    assert body["counts"] == {"total": 7, "sent": 0, "failed": 0, "skipped": 5, "unknown": 0, "cancelled": 0,
                              "pending": 2}
    assert body["progress"] == 0.0 and body["started_at"]

    assert dispatch.dispatch(run_seconds=10) == 2

    body = api.get(f"{URL}/{campaign['id']}").json()
    assert body["status"] == "completed" and body["finished_at"]
    assert body["counts"] == {"total": 7, "sent": 2, "failed": 0, "skipped": 5, "unknown": 0, "cancelled": 0,
                              "pending": 0}
    assert body["progress"] == 100.0
    assert body["send_rate"] > 0 and body["eta_seconds"] is None
    received = {rcpt[0]: msg for rcpt, msg in smtp_server.messages}
    assert set(received) == {"ann@x.io", "bob@x.io"}
    assert received["bob@x.io"]["Subject"] == "Hi Bob"


def test_starting_twice_is_a_conflict(api, audience):
    campaign = _started(api)
    response = api.post(f"{URL}/{campaign['id']}/start")
    assert response.status_code == 409 and response.json()["field"] == "status"
    assert "running" in response.json()["detail"]
    assert Message.objects.count() == 7


def test_a_campaign_with_nobody_to_send_to_completes_at_fan_out(api, owner):
    lst = SubscriberListFactory(owner=owner, name="Gone")
    SubscriberFactory(list=lst, email="gone@x.io", status="unsubscribed")
    campaign = _started(api, list_names=["Gone"], message_content="Bye")
    assert _status(campaign["id"]) == CampaignStatus.COMPLETED
    assert api.get(f"{URL}/{campaign['id']}").json()["progress"] == 100.0


def test_messages_can_be_filtered_by_status(api, audience):
    campaign = _started(api)
    response = api.get(f"{URL}/{campaign['id']}/messages", {"status": "skipped"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert {(m["recipient"], m["skip_reason"]) for m in results} == {
        ("gone@x.io", "unsubscribed"), ("bounce@x.io", "bounced"), ("idle@x.io", "inactive"),
        ("blocked@x.io", "suppressed"), ("", "no_address"),
    }
    assert response.json()["count"] == 5
    assert api.get(f"{URL}/{campaign['id']}/messages").json()["count"] == 7
    bad = api.get(f"{URL}/{campaign['id']}/messages", {"status": "lost"})
    assert bad.status_code == 400 and "status" in bad.json()["detail"]


# --- Pause, resume, cancel -----------------------------------------------------------------------


def test_pause_stops_sending_and_resume_continues(api, audience, smtp_server):
    campaign = _started(api)
    response = api.post(f"{URL}/{campaign['id']}/pause")
    assert response.status_code == 200 and response.json()["status"] == "paused"

    assert dispatch.dispatch(run_seconds=2) == 0
    assert smtp_server.messages == []
    assert set(_statuses(campaign["id"]).values()) == {"queued", "skipped"}
    assert _status(campaign["id"]) == CampaignStatus.PAUSED  # not completed by the run either

    response = api.post(f"{URL}/{campaign['id']}/resume")
    assert response.status_code == 200 and response.json()["status"] == "running"
    assert dispatch.dispatch(run_seconds=10) == 2
    assert sorted(rcpt[0] for rcpt, _ in smtp_server.messages) == ["ann@x.io", "bob@x.io"]
    assert _status(campaign["id"]) == CampaignStatus.COMPLETED
    changes = list(AuditLog.objects.filter(entity_type="campaign", entity_id=campaign["id"], before__isnull=False)
                   .order_by("id").values_list("before__status", "after__status"))
    assert changes == [("draft", "starting"), ("running", "paused"), ("paused", "running")]


def test_a_campaign_paused_before_its_fan_out_ran_still_reaches_its_audience_when_resumed(api, audience, smtp_server):
    campaign = _create(api)
    assert api.post(f"{URL}/{campaign['id']}/start").status_code == 202
    assert api.post(f"{URL}/{campaign['id']}/pause").status_code == 200  # before a worker ran the fan-out
    tasks.fan_out(campaign["id"])  # the queued task runs now
    assert api.post(f"{URL}/{campaign['id']}/resume").status_code == 200
    tasks.fan_out(campaign["id"])
    dispatch.dispatch(run_seconds=10)

    assert sorted(rcpt[0] for rcpt, _ in smtp_server.messages) == ["ann@x.io", "bob@x.io"]
    assert Campaign.objects.get(pk=campaign["id"]).sent_count == 2


def test_pause_and_resume_refuse_the_wrong_state(api, audience):
    campaign = _create(api)
    response = api.post(f"{URL}/{campaign['id']}/pause")
    assert response.status_code == 409 and "draft" in response.json()["detail"]
    response = api.post(f"{URL}/{campaign['id']}/resume")
    assert response.status_code == 409 and response.json()["field"] == "status"
    assert _status(campaign["id"]) == CampaignStatus.DRAFT


def test_cancel_cancels_queued_messages_and_nothing_is_sent(api, audience, smtp_server):
    campaign = _started(api)
    response = api.post(f"{URL}/{campaign['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    statuses = _statuses(campaign["id"])
    assert statuses["ann@x.io"] == statuses["bob@x.io"] == MessageStatus.CANCELLED
    assert statuses["gone@x.io"] == MessageStatus.SKIPPED

    assert dispatch.dispatch(run_seconds=2) == 0
    assert smtp_server.messages == []
    saved = Campaign.objects.get(pk=campaign["id"])
    assert saved.status == CampaignStatus.CANCELLED and saved.finished_at is not None
    assert api.post(f"{URL}/{campaign['id']}/resume").status_code == 409
    assert api.post(f"{URL}/{campaign['id']}/cancel").status_code == 409


def test_a_cancelled_campaign_reports_nothing_pending(api, audience):
    campaign = _started(api)
    api.post(f"{URL}/{campaign['id']}/cancel")
    counts = api.get(f"{URL}/{campaign['id']}").json()["counts"]
    assert (counts["total"], counts["skipped"], counts["cancelled"]) == (7, 5, 2)
    assert counts["pending"] == 0  # its two cancelled messages will never be sent


# --- Retry failed --------------------------------------------------------------------------------


def test_retry_failed_requeues_only_the_failed_messages(api, audience, refusing_smtp):
    refusing_smtp.refuse["bob@x.io"] = "550 5.1.1 mailbox unavailable"
    campaign = _started(api)
    dispatch.dispatch(run_seconds=10)
    bob = Message.objects.get(recipient="bob@x.io")
    assert (bob.status, bob.attempts) == (MessageStatus.FAILED, 1)
    assert "550" in bob.last_error and "mailbox unavailable" in bob.last_error
    body = api.get(f"{URL}/{campaign['id']}").json()
    assert body["status"] == "completed" and (body["counts"]["sent"], body["counts"]["failed"]) == (1, 1)
    failed = api.get(f"{URL}/{campaign['id']}/messages", {"status": "failed"}).json()["results"]
    assert [(m["recipient"], m["last_error"]) for m in failed] == [("bob@x.io", bob.last_error)]

    refusing_smtp.refuse.clear()  # the mailbox is fixed
    response = api.post(f"{URL}/{campaign['id']}/retry-failed")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "running" and response.json()["counts"]["failed"] == 0
    bob.refresh_from_db()
    assert (bob.status, bob.attempts, bob.last_error) == (MessageStatus.QUEUED, 0, "")
    statuses = _statuses(campaign["id"])
    assert statuses["ann@x.io"] == MessageStatus.SENT and statuses["gone@x.io"] == MessageStatus.SKIPPED
    assert AuditLog.objects.filter(entity_type="campaign", metadata__requeued=1).exists()

    dispatch.dispatch(run_seconds=10)
    received = [rcpt[0] for rcpt, _ in refusing_smtp.messages]
    assert sorted(received) == ["ann@x.io", "bob@x.io"]  # Ann was not sent again
    saved = Campaign.objects.get(pk=campaign["id"])
    assert (saved.status, saved.sent_count, saved.failed_count) == (CampaignStatus.COMPLETED, 2, 0)


def test_retry_failed_without_failed_messages_is_a_conflict(api, audience, smtp_server):
    campaign = _started(api)
    dispatch.dispatch(run_seconds=10)
    response = api.post(f"{URL}/{campaign['id']}/retry-failed")
    assert response.status_code == 409 and "no failed messages" in response.json()["detail"]
    draft = _create(api, name="Draft")
    assert api.post(f"{URL}/{draft['id']}/retry-failed").status_code == 409


# --- Test send -----------------------------------------------------------------------------------


def test_test_send_delivers_a_marked_copy_with_unsubscribe_headers(api, owner, audience, smtp_server):
    campaign = _create(api)
    response = api.post(f"{URL}/{campaign['id']}/test-send", {"recipient": " QA@X.io "}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["sent"] is True and response.json()["recipient"] == "qa@x.io"
    [(rcpt, message)] = smtp_server.messages
    assert rcpt == ["qa@x.io"]
    assert message["Subject"] == "[TEST] Hi Ann"  # rendered for the first recipient of the audience
    assert "Your order A1." in message.get_body(("plain",)).get_content()
    assert str(message["List-Unsubscribe"]).strip().startswith("<http://127.0.0.1:8000/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not Message.objects.exists() and _status(campaign["id"]) == CampaignStatus.DRAFT
    assert AuditLog.objects.filter(entity_type="campaign", user_action__contains="Test send").exists()


@pytest.mark.parametrize("recipient", ["not-an-email", "ann@", ""])
def test_test_send_to_a_bad_address_is_refused(api, audience, smtp_server, recipient):
    campaign = _create(api)
    response = api.post(f"{URL}/{campaign['id']}/test-send", {"recipient": recipient}, format="json")
    assert response.status_code == 400
    assert "recipient" in response.json()["detail"]
    assert smtp_server.messages == []


def test_test_send_refused_by_the_mail_server_is_reported(api, audience, refusing_smtp):
    refusing_smtp.refuse["qa@x.io"] = "550 5.1.1 no such user"
    campaign = _create(api)
    response = api.post(f"{URL}/{campaign['id']}/test-send", {"recipient": "qa@x.io"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "recipient" and "550" in response.json()["detail"]


# --- Preview and dry run -------------------------------------------------------------------------


def test_preview_renders_for_the_chosen_subscriber(api, audience):
    campaign = _create(api)
    response = api.get(f"{URL}/{campaign['id']}/preview", {"subscriber_id": audience["bob"].pk})
    assert response.status_code == 200
    body = response.json()
    assert (body["subscriber_id"], body["subject"], body["body_text"]) == (audience["bob"].pk, "Hi Bob", "Your order B2.")
    first = api.get(f"{URL}/{campaign['id']}/preview").json()
    assert (first["subscriber_id"], first["subject"]) == (audience["ann"].pk, "Hi Ann")


def test_preview_for_a_subscriber_outside_the_audience_is_not_found(api, owner, outsider, audience):
    campaign = _create(api, list_names=["VIP"])
    other_list = SubscriberFactory(list=SubscriberListFactory(owner=owner, name="Other"), email="z@x.io")
    theirs = SubscriberFactory(list=SubscriberListFactory(owner=outsider, name="News"), email="t@x.io")
    for subscriber_id in (audience["bob"].pk, other_list.pk, theirs.pk, 99_999_999):
        response = api.get(f"{URL}/{campaign['id']}/preview", {"subscriber_id": subscriber_id})
        assert response.status_code == 404
        assert response.json()["field"] == "subscriber_id" and "not in this campaign's audience" in response.json()["detail"]
    bad = api.get(f"{URL}/{campaign['id']}/preview", {"subscriber_id": "abc"})
    assert bad.status_code == 400 and "subscriber_id" in bad.json()["detail"]


def test_dry_run_counts_a_blank_phone_or_name_as_a_missing_merge_field(api, audience):
    audience["bob"].name = ""
    audience["bob"].save(update_fields=["name"])
    campaign = _create(api, subject="Hi {{ name }}", message_content="Call {{ phone }}. {{ unsubscribe_url }}")
    body = api.get(f"{URL}/{campaign['id']}/dry-run").json()
    # Only "nowhere" has a phone; Bob's name is blank; everyone gets an unsubscribe link.
    assert body["missing_merge_fields_in_sample"] == {"phone": 7, "name": 1}
    assert body["recipients_missing_merge_fields_in_sample"] == 7
    assert body["sample_size"] == 8


def test_dry_run_reports_the_audience_after_dedupe_and_suppression(api, audience):
    campaign = _create(api)
    response = api.get(f"{URL}/{campaign['id']}/dry-run")
    assert response.status_code == 200
    body = response.json()
    assert body["audience_total"] == 8
    assert body["unique_addresses"] == 6  # ann@x.io counted once; the address-less one not at all
    assert body["without_address"] == 1
    assert body["suppressed"] == 1
    assert body["unsubscribed_bounced_or_inactive"] == 3
    assert body["required_merge_fields"] == ["name", "order_no"]
    # Five subscribers have no order_no (name is every recipient's own).
    assert body["missing_merge_fields_in_sample"] == {"order_no": 5}
    assert body["recipients_missing_merge_fields_in_sample"] == 5
    assert body["would_queue"] == 2  # exactly what the start below queues
    # Nothing was done.
    assert not Message.objects.exists() and _status(campaign["id"]) == CampaignStatus.DRAFT

    tasks.fan_out(api.post(f"{URL}/{campaign['id']}/start").json()["task_id"])
    assert Message.objects.filter(status="queued").count() == body["would_queue"]


def test_dry_run_of_an_sms_campaign_reports_segments_and_encoding(api, owner):
    lst = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    SubscriberFactory(list=lst, email="", phone="+14155552671", name="Zoë")
    campaign = _create(api, channel="sms", subject="", list_names=["Phones"],
                       message_content="Grüße {{ name }} ☀ " + "x" * 80)
    body = api.get(f"{URL}/{campaign['id']}/dry-run").json()
    text = repr(body)
    assert "UCS-2" in text, body
    assert any("segment" in key for key in body), body


# --- Concurrency of actions ----------------------------------------------------------------------


def test_concurrent_pauses_pause_once_and_the_others_conflict(api, owner, audience):
    campaign = _started(api)
    actor = Actor(user=owner, source="api")
    errors: list[Exception] = []

    def pause() -> None:
        from django.db import connection

        try:
            services.campaign_pause(actor=actor, campaign=Campaign.objects.get(pk=campaign["id"]))
        except Exception as exc:  # noqa: BLE001 - the loser of the race gets a Conflict
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pause) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _status(campaign["id"]) == CampaignStatus.PAUSED
    assert len(errors) == 2 and all("cannot pause" in str(e) for e in errors)
    assert AuditLog.objects.filter(entity_type="campaign", after__status="paused").count() == 1
