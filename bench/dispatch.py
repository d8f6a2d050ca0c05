"""Benchmark: campaign fan-out and dispatch on PostgreSQL, through real worker processes.

Prints:
- fan-out of a 1,000,000-subscriber campaign (one INSERT ... SELECT);
- the SMTP protocol alone (smtplib, one connection) as the stand-alone baseline of this run;
- dispatch rate to a loopback SMTP server (aiosmtpd) with 1 and 2 worker processes, no rate limit;
- dispatch rate to a loopback HTTP SMS gateway with 1 and 2 worker processes, no rate limit
  (when the gateway backend is available);
- rate limiter accuracy: a limit of 200/s across 2 workers;
- duplicates received (must be 0) in every run.

    .venv/bin/python bench/dispatch.py [--subscribers 1000000] [--messages 20000]

Uses its own database (inboxerr_bench_dispatch). A script, not a test.
"""

import argparse
import os
import platform
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from procinfo import free_port  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "inboxerr_bench_dispatch"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
sys.path.insert(0, str(ROOT))


def psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atqc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


class SmtpReceiver:
    """aiosmtpd on loopback counting deliveries per Message-ID."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        header = b"Message-ID:"
        content = envelope.content
        start = content.find(header)
        key = content[start: content.find(b"\n", start)].strip() if start >= 0 else b"?"
        with self.lock:
            self.counts[key] += 1
        return "250 OK"

    def start(self) -> "SmtpReceiver":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def received(self) -> tuple[int, int]:
        with self.lock:
            return sum(self.counts.values()), sum(1 for n in self.counts.values() if n > 1)

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()


def smtp_baseline(port: int, count: int) -> float:
    """The protocol alone: smtplib over one connection, stdlib messages (no Django, no DB)."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for i in range(count):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "bench@localhost", f"b{i}@x.io", f"#{i}"
            msg["Message-ID"] = f"<baseline-{i}@bench>"
            msg.set_content(f"Hello {i}")
            client.send_message(msg)
    return count / (time.perf_counter() - started)


def worker_env(**extra: str) -> dict:
    env = {**os.environ, "DATABASE_URL": DB_URL, "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789", "PYTHONUNBUFFERED": "1", "DEBUG": "false", **extra}
    env.pop("REDIS_URL", None)
    return env


def start_cluster(workers: int, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT,
                            env=worker_env(Q_WORKERS=str(workers), DISPATCH_WORKERS=str(workers), **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop_cluster(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def seed(subscribers: int, owner_id: int) -> dict:
    """Lists 'million' (all) and 'slice' (the first `--messages`), set-based."""
    from subscribers.models import SubscriberList

    psql("TRUNCATE subscribers_subscriber, campaigns_message, campaigns_campaign_lists, campaigns_campaign CASCADE", DB_NAME)
    SubscriberList.objects.filter(owner_id=owner_id).delete()
    big = SubscriberList.objects.create(owner_id=owner_id, name="million")
    started = time.perf_counter()
    psql(f"""
        INSERT INTO subscribers_subscriber (list_id, key, email, phone, name, status, standard_fields, custom_fields,
                                            created_at, updated_at)
        SELECT {big.pk}, 'p' || g || '@x.io', 'p' || g || '@x.io', '+1415555' || lpad((g % 10000)::text, 4, '0'),
               'Person ' || g, CASE WHEN g % 100 = 0 THEN 'unsubscribed' ELSE 'active' END,
               jsonb_build_object('first_name', 'P' || g), jsonb_build_object('plan', 'pro', 'n', g::text), now(), now()
        FROM generate_series(1, {subscribers}) AS g;
        ANALYZE subscribers_subscriber;
    """, DB_NAME)
    SubscriberList.objects.filter(pk=big.pk).update(subscriber_count=subscribers)
    return {"lists": [big.name], "seed_s": round(time.perf_counter() - started, 1)}


def slice_list(owner_id: int, size: int, name: str, phone_unique: bool = False) -> None:
    from subscribers.models import SubscriberList

    SubscriberList.objects.filter(owner_id=owner_id, name=name).delete()
    lst = SubscriberList.objects.create(owner_id=owner_id, name=name, key_field="phone" if phone_unique else "email")
    phone = "'+1415' || (2000000 + g)::text" if phone_unique else "''"
    key = phone if phone_unique else "'" + name + "' || g || '@x.io'"
    psql(f"""
        INSERT INTO subscribers_subscriber (list_id, key, email, phone, name, status, standard_fields, custom_fields,
                                            created_at, updated_at)
        SELECT {lst.pk}, {key}, '{name}' || g || '@x.io', {phone}, 'Person ' || g, 'active', '{{}}', jsonb_build_object('n', g::text), now(), now()
        FROM generate_series(1, {size}) AS g;
    """, DB_NAME)
    SubscriberList.objects.filter(pk=lst.pk).update(subscriber_count=size)


def new_campaign(owner, list_name: str, channel: str = "email"):
    from campaigns import services
    from inboxerr.actors import Actor

    actor = Actor(user=owner, source="command")
    campaign = services.campaign_create(actor=actor, owner=owner, name=f"bench {list_name} {time.time()}", channel=channel,
                                        subject="Bench #{{ n }}" if channel == "email" else "",
                                        message_content="Hello {{ name }}, your number is {{ n }}.", list_names=[list_name])
    return services.campaign_start(actor=actor, campaign=campaign)


def run_campaign(owner, list_name: str, workers: int, channel: str = "email", **env: str) -> dict:
    """Fan out in-process, then time real worker processes until the campaign completes."""
    from campaigns import services
    from campaigns.models import Campaign, CampaignStatus

    campaign = new_campaign(owner, list_name, channel)
    services.campaign_fan_out(campaign_id=campaign.pk)
    cluster = start_cluster(workers, **env)
    started = time.perf_counter()
    try:
        while True:
            campaign.refresh_from_db()
            if campaign.status != CampaignStatus.RUNNING:
                break
            time.sleep(0.1)
    finally:
        elapsed = time.perf_counter() - started
        stop_cluster(cluster)
    campaign = Campaign.objects.get(pk=campaign.pk)
    return {"sent": campaign.sent_count, "failed": campaign.failed_count, "elapsed_s": round(elapsed, 2),
            "per_second": round(campaign.sent_count / elapsed), "status": campaign.status, "campaign": campaign}


def measured_rate(campaign) -> float:
    """Sends per second between the first and the last send (worker start-up excluded)."""
    from django.db.models import Max, Min

    from campaigns.models import Message

    span = Message.objects.filter(campaign=campaign, status="sent").aggregate(a=Min("sent_at"), b=Max("sent_at"))
    seconds = (span["b"] - span["a"]).total_seconds()
    return (campaign.sent_count - 1) / seconds if seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate-messages", type=int, default=4_000)
    args = parser.parse_args()

    print(f"date {time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores; {platform.machine()}; Python {platform.python_version()}")
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'") != "1":
        psql(f"CREATE DATABASE {DB_NAME}")
    print("PostgreSQL", psql("SHOW server_version"))
    os.environ.update(worker_env())
    os.environ["DJANGO_SETTINGS_MODULE"] = "inboxerr.settings"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=worker_env(), check=True)
    import logging

    import django

    django.setup()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at INFO
    logging.getLogger("django-q").setLevel(logging.WARNING)
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns.models import RateLimit

    owner, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
    RateLimit.objects.all().delete()
    psql("DELETE FROM django_q_ormq; DELETE FROM django_q_schedule", DB_NAME)  # no ticks: each run is timed alone

    print(seed(args.subscribers, owner.pk))
    campaign = new_campaign(owner, "million")
    started = time.perf_counter()
    campaign = services.campaign_fan_out(campaign_id=campaign.pk)
    fan_out = time.perf_counter() - started
    print(f"fan-out: {campaign.total_count:,} messages ({campaign.skipped_count:,} skipped) in {fan_out:.1f} s "
          f"(target < 15 s)")
    services.campaign_cancel(actor=__import__("inboxerr.actors").actors.Actor.system("command"), campaign=campaign)
    psql("DELETE FROM django_q_ormq; DELETE FROM campaigns_dispatchslot", DB_NAME)

    receiver = SmtpReceiver().start()
    try:
        baseline = smtp_baseline(receiver.port, 5000)
        print(f"SMTP protocol alone (smtplib, one connection): {baseline:,.0f} messages/s")
        slice_list(owner.pk, args.messages, "slice")
        for workers in (1, 2):
            receiver.reset()
            result = run_campaign(owner, "slice", workers, EMAIL_URL=f"smtp://127.0.0.1:{receiver.port}")
            received, duplicates = receiver.received()
            print(f"SMTP, {workers} worker(s): {result['sent']:,} sent in {result['elapsed_s']} s = {result['per_second']:,}/s "
                  f"(steady {measured_rate(result['campaign']):,.0f}/s); received {received:,}, duplicates {duplicates}; "
                  f"{result['per_second'] / baseline:.2f} x the protocol baseline")
            psql("DELETE FROM django_q_ormq; DELETE FROM campaigns_dispatchslot", DB_NAME)

        # Rate limiter accuracy: 200/s shared by two worker processes.
        RateLimit.objects.update_or_create(name="email", defaults={"rate": 200, "burst": 10, "enabled": True, "tokens": 0})
        slice_list(owner.pk, args.rate_messages, "ratelimited")
        receiver.reset()
        result = run_campaign(owner, "ratelimited", 2, EMAIL_URL=f"smtp://127.0.0.1:{receiver.port}")
        rate = measured_rate(result["campaign"])
        received, duplicates = receiver.received()
        print(f"rate limit 200/s, 2 workers: measured {rate:.1f}/s ({100 * (rate - 200) / 200:+.1f}%, target within 5%); "
              f"received {received:,}, duplicates {duplicates}")
        RateLimit.objects.all().delete()
    finally:
        receiver.stop()

    gateway_backend = "campaigns.channels.sms.HttpGatewayBackend"
    try:
        from django.utils.module_loading import import_string

        import_string(gateway_backend)
        from campaigns.tests.gateway import Gateway
    except ImportError:
        print("HTTP gateway: backend not available in this checkout; skipped")
        return
    gateway = Gateway().start()
    try:
        slice_list(owner.pk, args.messages, "phones", phone_unique=True)
        for workers in (1, 2):
            result = run_campaign(owner, "phones", workers, channel="sms", SMS_BACKEND=gateway_backend,
                                  SMS_GATEWAY_URL=gateway.url, SMS_GATEWAY_TOKEN="")
            keys = Counter(request.idempotency_key for request in gateway.requests())
            duplicates = sum(1 for n in keys.values() if n > 1)
            print(f"HTTP gateway, {workers} worker(s): {result['sent']:,} sent in {result['elapsed_s']} s = "
                  f"{result['per_second']:,}/s (steady {measured_rate(result['campaign']):,.0f}/s); duplicates {duplicates}")
            gateway.reset() if hasattr(gateway, "reset") else None
            psql("DELETE FROM django_q_ormq; DELETE FROM campaigns_dispatchslot", DB_NAME)
    finally:
        gateway.stop()


if __name__ == "__main__":
    main()
