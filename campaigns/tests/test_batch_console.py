"""Batches beyond their own API: the task tracker, live progress, /metrics, the admin console,
the purge command and template deletion."""

import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from audit.models import AuditLog
from campaigns import batches, outbox
from campaigns.models import BatchStatus, Message, MessageBatch, MessageStatus, MessageTemplate, OutboxSwitch
from inboxerr.actors import Actor
from inboxerr.errors import Conflict
from inboxerr.progress import CLOSE_NOT_FOUND, JobProgressConsumer

BATCHES = "/admin/campaigns/messagebatch/"
MESSAGES = "/admin/campaigns/message/"
SWITCH = "/admin/campaigns/outboxswitch/"


def _items(count: int, start: int = 0) -> list[dict]:
    return [{"request_id": f"r{i}", "channel": "sms", "recipient": f"+1415555{i:04d}", "content": "Code {{ code }}",
             "variables": {"code": i}} for i in range(start, start + count)]


def _ingest(owner, count: int = 3) -> MessageBatch:
    return batches.batch_ingest(actor=Actor(user=owner, source="api"), owner=owner, items=_items(count))


def _failed(owner) -> MessageBatch:
    """A batch the publisher finished with one item failed."""
    batch = _ingest(owner)
    items = list(Message.objects.filter(batch=batch).order_by("sequence"))
    Message.objects.filter(pk__in=[items[0].pk, items[2].pk]).update(status=MessageStatus.SENT, sent_at=timezone.now())
    Message.objects.filter(pk=items[1].pk).update(status=MessageStatus.FAILED, last_error="400 unknown handset",
                                                  attempts=1)
    MessageBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.FAILED, sent_count=2, failed_count=1,
                                                    status_reason="1 of 3 items failed", finished_at=timezone.now())
    batch.refresh_from_db()
    return batch


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Task tracker and live progress ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_is_tracked_by_its_batch_id(api, outsider_api, owner):
    batch = _ingest(owner, 4)
    body = api.get(f"/api/v1/tasks/{batch.batch_id}").json()
    assert body["id"] == batch.batch_id and body["kind"] == "batch" and body["status"] == "pending"
    assert body["result"] == {"batch_sequence": 1, "total_items": 4, "sent": 0, "failed": 0, "skipped": 0, "unsent": 4}
    assert body["progress"] == 0.0
    assert body["links"]["items"] == f"/api/v1/outbox/batch/{batch.batch_id}/items"
    assert outsider_api.get(f"/api/v1/tasks/{batch.batch_id}").status_code == 404
    assert api.get("/api/v1/tasks/0123456789abcdef").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_websocket_client_follows_a_batch_until_it_is_committed(owner, outsider, sms_outbox, settings):
    settings.PROGRESS_POLL_SECONDS = 0.1
    batch = _ingest(owner, 200)

    async def follow(user, job_id: str) -> list[dict]:
        communicator = WebsocketCommunicator(JobProgressConsumer.as_asgi(), f"/ws/jobs/{job_id}/")
        communicator.scope["user"] = user
        communicator.scope["url_route"] = {"args": (), "kwargs": {"job_id": job_id}}
        connected, code = await communicator.connect(timeout=10)
        if not connected:
            return [{"closed": code}]
        first = await communicator.receive_json_from(timeout=10)
        publisher.start()
        messages = [first]
        while messages[-1]["status"] not in ("committed", "failed"):
            messages.append(await communicator.receive_json_from(timeout=30))
        await communicator.disconnect()
        return messages

    def publish() -> None:
        try:
            outbox.publish(run_seconds=30)
        finally:
            connection.close()  # this thread's own connection

    publisher = threading.Thread(target=publish)
    messages = async_to_sync(follow)(owner, batch.batch_id)
    publisher.join()
    assert messages[0]["kind"] == "batch" and messages[0]["status"] == "pending"
    assert messages[-1]["status"] == "committed" and messages[-1]["progress"] == 100.0
    assert messages[-1]["result"]["sent"] == 200 and len(sms_outbox) == 200
    progress = [m["progress"] for m in messages]
    assert progress == sorted(progress)
    assert async_to_sync(follow)(outsider, batch.batch_id) == [{"closed": CLOSE_NOT_FOUND}]


# --- Metrics -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_metrics_show_batches_by_status_items_sent_and_the_switch(client, owner, sms_outbox):
    _ingest(owner, 5)
    _ingest(owner, 2)
    outbox.publish(run_seconds=10)
    _ingest(owner, 1)  # still pending
    batches.outbox_set(actor=Actor.system(), enabled=False)
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").content.decode())}
    jobs = {(s.labels["kind"], s.labels["status"]): s.value for s in families["jobs"].samples}
    assert jobs[("batch", "committed")] == 2 and jobs[("batch", "pending")] == 1
    sent = {s.labels["channel"]: s.value for s in families["batch_items_sent"].samples if s.name == "batch_items_sent_total"}
    assert sent == {"sms": 7}
    finished = {s.labels["status"]: s.value for s in families["batches_finished"].samples
                if s.name == "batches_finished_total"}
    assert finished == {"committed": 2}
    assert families["outbox_running"].samples[0].value == 0


# --- Admin console ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_batch_changelist_shows_only_the_owners_batches_with_a_link_to_their_items(owner, outsider):
    mine, theirs = _ingest(owner), _ingest(outsider)
    page = _login(owner).get(BATCHES).content.decode()
    assert mine.batch_id in page and theirs.batch_id not in page
    assert f"{MESSAGES}?batch__id__exact={mine.pk}" in page
    items = _login(owner).get(MESSAGES, {"batch__id__exact": mine.pk}).content.decode()
    assert "+14155550000" in items
    # The outsider cannot list the owner's items, even by asking for the batch.
    assert "+14155550000" not in _login(outsider).get(MESSAGES, {"batch__id__exact": mine.pk}).content.decode()


@pytest.mark.django_db
def test_the_retry_action_requeues_the_failed_items_of_a_failed_batch(owner):
    failed, pending = _failed(owner), _ingest(owner)
    response = _login(owner).post(BATCHES, {"action": "retry_failed_items",
                                            "_selected_action": [failed.pk, pending.pk]}, follow=True)
    page = response.content.decode()
    assert f"Batch {failed.batch_id}: 1 failed items requeued" in page
    assert "only a failed batch can be retried" in page  # the pending one is reported, not changed
    failed.refresh_from_db()
    assert failed.status == BatchStatus.PENDING
    statuses = list(Message.objects.filter(batch=failed).order_by("sequence").values_list("status", flat=True))
    assert statuses == [MessageStatus.SENT, MessageStatus.QUEUED, MessageStatus.SENT]


@pytest.mark.django_db
def test_only_a_user_who_controls_the_outbox_sees_and_flips_the_switch(owner, superuser):
    assert _login(owner).get(SWITCH).status_code == 403
    client = _login(superuser)
    assert client.get(SWITCH).status_code == 200
    switch = OutboxSwitch.objects.get()
    response = client.post(SWITCH, {"action": "stop_publisher", "_selected_action": [switch.pk]}, follow=True)
    assert "Batch publisher stopped" in response.content.decode()
    switch.refresh_from_db()
    assert switch.enabled is False and switch.changed_by == "root"
    client.post(SWITCH, {"action": "start_publisher", "_selected_action": [switch.pk]})
    assert OutboxSwitch.objects.get().enabled is True
    assert AuditLog.objects.filter(entity_type="outbox").count() == 2


# --- Purge and template deletion --------------------------------------------------------------------


@pytest.mark.django_db
def test_purge_removes_items_of_batches_finished_before_the_cutoff_only(owner):
    old, recent, open_batch = _failed(owner), _failed(owner), _ingest(owner)
    MessageBatch.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=40))
    call_command("purge_messages", "--older-than", "30")
    assert not Message.objects.filter(batch=old).exists()
    assert Message.objects.filter(batch=recent).count() == 3
    assert Message.objects.filter(batch=open_batch).count() == 3
    old.refresh_from_db()
    assert (old.sent_count, old.failed_count) == (2, 1)  # the batch and its counters stay


@pytest.mark.django_db
def test_a_template_used_by_unsent_batch_items_cannot_be_deleted(owner):
    from campaigns import services

    actor = Actor(user=owner, source="api")
    template = services.template_create(actor=actor, owner=owner, name="Code", channel="sms",
                                        body_text="Your code is {{ code }}")
    batch = batches.batch_ingest(actor=actor, owner=owner, items=[
        {"request_id": "1", "channel": "sms", "recipient": "+14155550100", "template_id": template.pk,
         "variables": {"code": "1234"}}])
    with pytest.raises(Conflict, match="batch items not sent yet"):
        services.template_delete(actor=actor, template=template)
    Message.objects.filter(batch=batch).update(status=MessageStatus.SENT)
    MessageBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.COMMITTED)
    services.template_delete(actor=actor, template=template)
    assert not MessageTemplate.objects.filter(pk=template.pk).exists()


@pytest.mark.django_db
def test_the_batch_and_campaign_pages_follow_their_job_live(owner):
    from campaigns.models import Campaign

    batch = _ingest(owner)
    page = _login(owner).get(f"{BATCHES}{batch.pk}/change/").content.decode()
    # The panel's script opens /ws/jobs/<data-job-id>/ and polls data-task-url as its fallback.
    assert f'data-task-url="/api/v1/tasks/{batch.batch_id}"' in page and f'data-job-id="{batch.batch_id}"' in page
    campaign = Campaign.objects.create(owner=owner, name="Live", channel="sms", message_content="Hi", status="running")
    page = _login(owner).get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert f'data-job-id="{campaign.pk}"' in page and "inboxerr/job_panel.js" in page
