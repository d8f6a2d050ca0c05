"""/metrics: Prometheus text that counts the work of other processes, behind a token or loopback."""

import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from campaigns import services as campaigns
from campaigns.models import Campaign, CampaignStatus
from campaigns.tests.smtp import serve_smtp
from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import import_file
from inboxerr.actors import Actor
from inboxerr.tests.processes import kill_group, start_qcluster, wait_for


def _samples(text: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


class Inbox:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_metrics_count_the_work_of_a_separate_worker_process(client, owner, tmp_path, settings):
    settings.IMPORT_DIR = tmp_path / "imports"
    csv = tmp_path / "people.csv"
    csv.write_text("email,name\n" + "".join(f"m{i}@x.io,M{i}\n" for i in range(250)) + "bad-address,X\n")
    inbox = Inbox()
    with serve_smtp(inbox, settings) as port:
        job = import_file(owner, csv, list_name="Metrics")
        worker = start_qcluster(Q_WORKERS="1", IMPORT_DIR=str(settings.IMPORT_DIR), EMAIL_URL=f"smtp://127.0.0.1:{port}")
        try:
            wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status=ImportStatus.PARTIALLY_COMPLETED).exists(),
                     what="the import")
            actor = Actor(user=owner, source="api")
            campaign = campaigns.campaign_create(actor=actor, owner=owner, name="M", channel="email", subject="Hi",
                                                 message_content="Hello {{ name }}", list_names=["Metrics"])
            campaigns.campaign_start(actor=actor, campaign=campaign)
            wait_for(lambda: Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.COMPLETED).exists(),
                     what="the campaign")
        finally:
            kill_group(worker)
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    samples = _samples(response.content.decode())
    assert samples[("import_rows_processed_total", ())] == 251
    assert samples[("messages_sent_total", (("channel", "email"),))] == 250 == inbox.count
    assert samples[("dispatcher_loop_duration_seconds_count", ())] >= 1
    assert samples[("messages", (("status", "sent"),))] == 250
    assert samples[("jobs", (("kind", "import"), ("status", "partially_completed")))] == 1


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200
    assert ("messages_sent_total", ()) in _samples(response.content.decode())


@pytest.mark.django_db
def test_metrics_without_a_token_are_for_loopback_callers_only(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_counter_names_follow_the_seed():
    from inboxerr.metrics import COUNTERS, HISTOGRAMS

    assert {"import_rows_processed", "messages_sent"} <= set(COUNTERS)
    assert "dispatcher_loop_duration_seconds" in HISTOGRAMS


@pytest.mark.django_db
def test_metrics_behind_a_proxy_open_only_to_the_token(client, settings):
    # With SECURE_PROXY_SSL_HEADER or NUM_PROXIES set, METRICS_ALLOWED_IPS defaults to nobody
    # (test_settings.py): every caller arrives from the proxy, often loopback.
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


@pytest.mark.django_db
def test_metrics_allowed_ips_take_networks_and_ignore_forwarded_for(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.0.2.5"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 401
