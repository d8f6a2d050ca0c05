"""The live job pages of the admin: one panel whose figures are the task tracker's, buttons that
call the job's services through CSRF-protected POSTs, read-only details in words (no raw JSON)."""

import re

import pytest
from django.test import Client

from audit.models import AuditLog
from campaigns import services
from campaigns.models import CampaignStatus, MessageBatch
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import import_file, run_now, write
from inboxerr.actors import Actor
from inboxerr.tests.admin_browser import browser_for, page_csrf_token
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)

IMPORTS = "/admin/imports/importjob/"
CAMPAIGNS = "/admin/campaigns/campaign/"


def _post_button(client: Client, page_url: str, button_url: str):
    """Press a panel button as a browser does: with the CSRF token of the page it is on."""
    return client.post(button_url, {"csrfmiddlewaretoken": page_csrf_token(client, page_url)})


def _figure(content: bytes, key: str) -> str:
    match = re.search(rf'data-result="{key}">([^<]*)<'.encode(), content)
    assert match, f"no figure {key}"
    return match.group(1).decode()


@pytest.fixture
def finished_import(owner, tmp_path, settings) -> ImportJob:
    settings.IMPORT_DIR = tmp_path / "imports"
    path = write(tmp_path, "email,name,city\n" + "".join(f"p{i}@x.io,P{i},Oslo\n" for i in range(12))
                 + "p1@x.io,again,Oslo\nnot-an-email,Bad,Oslo\n")
    return run_now(import_file(owner, path))


@pytest.fixture
def pending_import(owner, tmp_path, settings) -> ImportJob:
    settings.IMPORT_DIR = tmp_path / "imports"
    return import_file(owner, write(tmp_path, "email\na@x.io\n"))


def _running_campaign(owner):
    lst = SubscriberListFactory(owner=owner, name="Customers")
    for i in range(3):
        SubscriberFactory(list=lst, email=f"r{i}@x.io", name=f"R{i}")
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="Spring", channel="email", subject="Hi",
                                        message_content="Hello {{ name }}", list_names=["Customers"])
    services.campaign_start(actor=actor, campaign=campaign)
    return services.campaign_fan_out(campaign_id=campaign.pk)


def test_a_finished_import_page_shows_its_final_figures_in_one_panel(owner, finished_import):
    response = browser_for(owner).get(f"{IMPORTS}{finished_import.pk}/change/")
    assert response.status_code == 200
    content = response.content
    assert b'class="job-status" data-field="status">Partially completed<' in content
    assert (_figure(content, "processed_rows"), _figure(content, "created"), _figure(content, "duplicates"),
            _figure(content, "invalid")) == ("14", "12", "1", "1")
    # Finished: no "live" badge, no cancel button; the row errors can be downloaded.
    assert re.search(rb'data-field="live"\s+hidden', content)
    assert re.search(rb'data-when="pending processing stuck"\s+hidden', content)
    assert f"/api/v1/imports/{finished_import.pk}/errors".encode() in content
    # The title does not carry a status that would go stale.
    assert b"(processing)" not in content and b"(pending)" not in content


def test_an_import_page_shows_how_the_file_is_read_as_words_not_json(owner, finished_import):
    content = browser_for(owner).get(f"{IMPORTS}{finished_import.pk}/change/").content
    assert b'<table class="key-values">' in content
    assert b"worker_token" not in content and b"Checkpoint:" not in content
    assert b"{&quot;" not in content and b"{&#x27;" not in content


def test_the_cancel_button_cancels_a_pending_import_with_csrf(owner, pending_import):
    client = browser_for(owner)
    page = f"{IMPORTS}{pending_import.pk}/change/"
    assert re.search(rb'data-when="pending processing stuck"\s*>', client.get(page).content)  # offered
    response = _post_button(client, page, f"{IMPORTS}{pending_import.pk}/job/cancel/")
    assert response.status_code == 302 and response["Location"] == page
    pending_import.refresh_from_db()
    assert pending_import.status == ImportStatus.CANCELLED
    assert AuditLog.objects.filter(entity_type="import_job", entity_id=str(pending_import.pk),
                                   user_action__startswith="Cancelled").exists()


def test_a_control_without_the_csrf_token_is_refused(owner, pending_import):
    response = browser_for(owner).post(f"{IMPORTS}{pending_import.pk}/job/cancel/")
    assert response.status_code == 403
    pending_import.refresh_from_db()
    assert pending_import.status == ImportStatus.PENDING


def test_a_control_is_post_only(owner, pending_import):
    assert browser_for(owner).get(f"{IMPORTS}{pending_import.pk}/job/cancel/").status_code == 405


def test_a_refused_control_becomes_a_message_not_an_error_page(owner, finished_import):
    client = browser_for(owner)
    page = f"{IMPORTS}{finished_import.pk}/change/"
    response = _post_button(client, page, f"{IMPORTS}{finished_import.pk}/job/cancel/")
    assert response.status_code == 302
    shown = client.get(page).content
    assert b"only pending or processing jobs can be cancelled" in shown


def test_an_outsider_cannot_see_or_control_an_import(owner, outsider, pending_import):
    client = browser_for(outsider)
    assert client.get(f"{IMPORTS}{pending_import.pk}/change/").status_code == 302  # "not found" → changelist
    own_page = f"{IMPORTS}"
    response = _post_button(client, own_page, f"{IMPORTS}{pending_import.pk}/job/cancel/")
    assert response.status_code == 404
    pending_import.refresh_from_db()
    assert pending_import.status == ImportStatus.PENDING


def test_an_unknown_control_is_not_found(owner, pending_import):
    client = browser_for(owner)
    response = _post_button(client, f"{IMPORTS}{pending_import.pk}/change/", f"{IMPORTS}{pending_import.pk}/job/explode/")
    assert response.status_code == 404


def test_pause_and_resume_buttons_drive_a_running_campaign(owner):
    campaign = _running_campaign(owner)
    client = browser_for(owner)
    page = f"{CAMPAIGNS}{campaign.pk}/change/"
    content = client.get(page).content
    assert b'class="job-status" data-field="status">Running<' in content
    assert (_figure(content, "total"), _figure(content, "sent"), _figure(content, "pending")) == ("3", "0", "3")
    assert _post_button(client, page, f"{CAMPAIGNS}{campaign.pk}/job/pause/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    content = client.get(page).content
    assert b"Campaign paused" in content
    assert re.search(rb'data-when="paused"\s*>', content)  # resume is offered now
    assert _post_button(client, page, f"{CAMPAIGNS}{campaign.pk}/job/resume/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING


def test_a_campaign_page_has_no_stale_status_or_counter_fields(owner):
    campaign = _running_campaign(owner)
    content = browser_for(owner).get(f"{CAMPAIGNS}{campaign.pk}/change/").content
    form = content.split(b'id="job-panel"')[1]
    for stale in (b"Sent count", b"Total count", b"Status reason", b"Started at"):
        assert stale not in form
    assert b"Customers" in form  # the audience, by name


def test_a_batch_page_follows_the_batch_by_its_batch_id(owner, api):
    stored = api.post("/api/v1/batch/process", [
        {"request_id": "1", "channel": "sms", "recipient": "+14155550101", "content": "Hi"},
    ], format="json").json()
    batch = MessageBatch.objects.get(batch_id=stored["data"]["batch_id"])
    content = browser_for(owner).get(f"/admin/campaigns/messagebatch/{batch.pk}/change/").content
    assert f'data-job-id="{batch.batch_id}"'.encode() in content
    assert _figure(content, "total_items") == "1"


def test_the_tracker_reports_rate_and_time_left_for_every_job(owner, api, finished_import):
    body = api.get(f"/api/v1/tasks/{finished_import.pk}").json()
    assert body["rate_unit"] == "rows" and body["rate"] > 0
    assert body["eta_seconds"] is None  # finished
    assert body["started_at"] and body["finished_at"]
    campaign = _running_campaign(owner)
    body = api.get(f"/api/v1/tasks/{campaign.pk}").json()
    assert (body["rate_unit"], body["status"], body["finished_at"]) == ("messages", "running", None)
