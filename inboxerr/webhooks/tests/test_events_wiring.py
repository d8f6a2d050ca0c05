"""Imports and campaigns emit their events into the outbox in the transaction of the change,
and the deliveries reach a real receiver."""

import json

import pytest

from campaigns import dispatch
from campaigns import services as campaigns
from imports.tests.helpers import import_file, run_now, write
from inboxerr.actors import Actor
from inboxerr.webhooks import services, tasks
from inboxerr.webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


def _deliver_all() -> None:
    for delivery_id in WebhookDelivery.objects.values_list("pk", flat=True):
        tasks.deliver(delivery_id)


def test_import_and_campaign_events_reach_the_receiver(owner, receiver, tmp_path, settings, sms_outbox):
    settings.IMPORT_DIR = tmp_path / "imports"
    services.endpoint_create(actor=Actor(user=owner, source="api"), owner=owner, url=receiver.url)
    job = run_now(import_file(owner, write(tmp_path, "phone,name\n+14155552671,Ann\nnot-a-phone,Bo\n"), key_field="phone"))
    actor = Actor(user=owner, source="api")
    campaign = campaigns.campaign_create(actor=actor, owner=owner, name="Hi", channel="sms",
                                         message_content="Hi {{ name }}", list_names=["News"])
    campaigns.campaign_start(actor=actor, campaign=campaign)
    campaigns.campaign_fan_out(campaign_id=campaign.pk)
    dispatch.dispatch(run_seconds=5)
    _deliver_all()

    by_type = {body["type"]: body for body in (json.loads(r["body"]) for r in receiver.requests)}
    assert set(by_type) >= {"import.completed", "campaign.started", "campaign.completed"}
    imported = by_type["import.completed"]
    assert json.dumps(imported).count(str(job.pk)) >= 1 and '"invalid": 1' in json.dumps(imported)
    assert '"sent": 1' in json.dumps(by_type["campaign.completed"])


@pytest.fixture
def sms_outbox(settings):
    from campaigns.channels import sms

    settings.SMS_BACKEND = "campaigns.channels.sms.LocmemBackend"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()
