"""Benchmark: dispatch against a stand-alone loop on the same receivers in the same run, the SMTP
channel against its protocol baseline, the campaign fan-out, and (--grid) the rate limiter.

Every receiver runs in a process of its own and counts what arrives by id, so both sides of a
comparison are measured the same way, by the receiver (first to last arrival):

- HTTP: an asyncio HTTP/1.1 keep-alive JSON gateway on loopback (written below, stdlib only).
  Stand-alone loop: N processes of plain psycopg + http.client, no Django: claim a batch of queued
  message rows (`UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT k) RETURNING`),
  POST each as JSON on one keep-alive connection, mark the batch sent in one UPDATE. Inboxerr:
  a `qcluster` with N dispatcher workers sending the same number of messages of a campaign through
  `HttpGatewayBackend` (claim, render, send, record, counters, metrics, as in production).
- SMTP: aiosmtpd on loopback. Protocol baseline: smtplib loops (1 and 2 processes, stdlib
  messages, no database). Inboxerr: a `qcluster` sending an email campaign through the email
  channel (Django's SMTP backend).
- Fan-out (`--fan-out N`): one `campaign_fan_out` of an N-subscriber campaign.
- Rate-limit grid (`--grid`): limits of 10, 50, 200 and 1,000 msg/s with 1, 2 and 4 worker
  processes spread over two qclusters, the bucket in PostgreSQL and in Redis; achieved rate
  (receiver's first to last arrival) against the limit.

Each run checks every message arrived exactly once (no duplicates, none missing).

    .venv/bin/python bench/dispatch.py [--messages 20000] [--smtp-messages 5000] [--fan-out 1000000] [--only http,smtp] [--grid]

Uses its own database (inboxerr_bench_dispatch) and Redis database 7. A script, not a test.
"""

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from procinfo import free_port  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "inboxerr_bench_dispatch"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/7"
TEMPLATE = "Hello {{ name }}, your number is {{ n }}."
sys.path.insert(0, str(ROOT))


def psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atqc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


# --- Receivers (each in its own process; commands on stdin, one JSON answer per line) -----------


class Tally:
    """Arrivals by id, with the first and last arrival times."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.first = self.last = 0.0
        self.lock = threading.Lock()

    def add(self, key: str) -> None:
        now = time.monotonic()
        with self.lock:
            if not self.counts:
                self.first = now
            self.last = now
            self.counts[key] += 1

    def command(self, line: str) -> dict:
        with self.lock:
            if line == "reset":
                self.counts.clear()
                return {"ok": True}
            total = sum(self.counts.values())
            answer = {"received": total, "unique": len(self.counts),
                      "duplicates": sum(1 for n in self.counts.values() if n > 1),
                      "span": self.last - self.first if total else 0.0}
            if line == "ids":
                answer["ids"] = list(self.counts)
            return answer


def serve_commands(tally: Tally) -> None:
    for line in sys.stdin:
        sys.stdout.write(json.dumps(tally.command(line.strip())) + "\n")
        sys.stdout.flush()
    os._exit(0)


class GatewayProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies: what http.client sends. Answers a POST with
    {"id": ...}; counts the JSON body's `id`."""

    tally: Tally
    sequence = 0

    def connection_made(self, transport) -> None:
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15: head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4: end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            try:
                key = str(json.loads(body).get("id", ""))
            except ValueError:
                key = ""
            self.tally.add(key)
            GatewayProtocol.sequence += 1
            answer = b'{"id": "gw-%d"}' % GatewayProtocol.sequence
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(answer), answer))


def serve_http() -> None:
    tally = Tally()
    GatewayProtocol.tally = tally
    port = free_port()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(GatewayProtocol, "127.0.0.1", port)
        print(port, flush=True)
        async with server:
            await server.serve_forever()

    threading.Thread(target=serve_commands, args=(tally,), daemon=True).start()
    asyncio.run(main())


def serve_smtp() -> None:
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    tally = Tally()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            content = envelope.content
            start = content.find(b"Message-ID:")
            tally.add(content[start + 11: content.find(b"\n", start)].strip().decode() if start >= 0 else "?")
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    serve_commands(tally)


class Receiver:
    """The benchmark's handle on a receiver process."""

    def __init__(self, kind: str) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, f"--serve-{kind}"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.port = int(self.proc.stdout.readline())

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


# --- The stand-alone loop (no Django) ------------------------------------------------------------


def standalone_http(campaign_id: str, url: str, batch: int) -> None:
    """One worker of the stand-alone loop; prints how many it sent."""
    import http.client
    import socket
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(url)
    db = psycopg.connect(DB_URL, autocommit=True)
    db.execute("SET synchronous_commit TO off")  # as the dispatcher's session (DISPATCH_ASYNC_COMMIT)
    http_conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    http_conn.connect()
    http_conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    claim = """
        WITH claimed AS (
            UPDATE campaigns_message SET status = 'sending', lease_token = %(token)s, attempts = attempts + 1,
                   leased_until = now() + interval '120 seconds'
            WHERE id IN (SELECT id FROM campaigns_message WHERE campaign_id = %(campaign)s AND status = 'queued'
                         ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
            RETURNING id, uid, recipient, subscriber_id)
        SELECT c.id, c.uid, c.recipient, s.name, s.custom_fields ->> 'n'
        FROM claimed c LEFT JOIN subscribers_subscriber s ON s.id = c.subscriber_id ORDER BY c.id
    """
    mark = """
        UPDATE campaigns_message m SET status = 'sent', sent_at = now(), lease_token = '', leased_until = NULL,
               provider_message_id = v.pid
        FROM unnest(%s::bigint[], %s::text[]) AS v(id, pid) WHERE m.id = v.id AND m.lease_token = %s
    """
    sent = 0
    while True:
        token = uuid.uuid4().hex
        rows = db.execute(claim, {"token": token, "campaign": campaign_id, "limit": batch}).fetchall()
        if not rows:
            break
        ids, pids = [], []
        for message_id, uid, recipient, name, n in rows:
            body = json.dumps({"to": recipient, "body": f"Hello {name}, your number is {n}.", "id": str(uid)}).encode()
            http_conn.request("POST", parts.path or "/", body=body, headers={**headers, "Idempotency-Key": str(uid)})
            response = http_conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                raise SystemExit(f"gateway answered {response.status}")
            ids.append(message_id)
            pids.append(answer["id"])
        db.execute(mark, (ids, pids, token))
        sent += len(ids)
    print(sent, flush=True)


def standalone_smtp(port: int, count: int, offset: int) -> None:
    import smtplib
    from email.message import EmailMessage

    with smtplib.SMTP("127.0.0.1", port) as client:
        for i in range(offset, offset + count):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "bench@localhost", f"b{i}@x.io", f"Bench #{i}"
            msg["Message-ID"] = f"<baseline-{i}@bench>"
            msg.set_content(f"Hello Person {i}, your number is {i}.")
            client.send_message(msg)


def run_parallel(args_list: list[list[str]]) -> float:
    """Start the processes together; returns the wall time until the last one ends."""
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for args in args_list]
    for proc in procs:
        proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a stand-alone process failed: {proc.returncode}")
    return time.perf_counter() - started


# --- Inboxerr side ---------------------------------------------------------------------------------


def worker_env(**extra: str) -> dict:
    env = {**os.environ, "DATABASE_URL": DB_URL, "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
           "PYTHONUNBUFFERED": "1", "DEBUG": "false", **extra}
    if "REDIS_URL" not in extra:
        env.pop("REDIS_URL", None)
    return env


# Where the qclusters run. Linux (CONFIG_SCHED_AUTOGROUP, on here) shares the CPU fairly between
# sessions first, then between the processes of a session: a qcluster in a session of its own
# gets one share for all its workers, and every request it sends to the gateway (a process of this
# session) crosses from one group to the other and back. The stand-alone loop runs in this session
# with the gateway, so by default the qclusters do too (a process group of their own, for the
# stop); --own-session puts each qcluster in a new session, as before, to measure the difference.
OWN_SESSION = False


def start_cluster(workers: int, total: int | None = None, **env: str) -> subprocess.Popen:
    placement = {"start_new_session": True} if OWN_SESSION else {"process_group": 0}
    return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT,
                            env=worker_env(Q_WORKERS=str(workers), DISPATCH_WORKERS=str(total or workers), **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **placement)


def stop_cluster(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def clear_queue() -> None:
    psql("DELETE FROM django_q_ormq; DELETE FROM django_q_schedule; DELETE FROM campaigns_dispatchslot", DB_NAME)


def seed(subscribers: int, owner_id: int) -> float:
    """List 'million' (all), set-based."""
    from subscribers.models import SubscriberList

    SubscriberList.objects.filter(owner_id=owner_id, name="million").delete()
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
    return time.perf_counter() - started


def slice_list(owner_id: int, size: int, name: str, phone_unique: bool = False) -> None:
    from subscribers.models import SubscriberList

    SubscriberList.objects.filter(owner_id=owner_id, name=name).delete()
    lst = SubscriberList.objects.create(owner_id=owner_id, name=name, key_field="phone" if phone_unique else "email")
    phone = "'+1415' || (2000000 + g)::text" if phone_unique else "''"
    key = phone if phone_unique else "'" + name + "' || g || '@x.io'"
    psql(f"""
        INSERT INTO subscribers_subscriber (list_id, key, email, phone, name, status, standard_fields, custom_fields,
                                            created_at, updated_at)
        SELECT {lst.pk}, {key}, '{name}' || g || '@x.io', {phone}, 'Person ' || g, 'active', '{{}}',
               jsonb_build_object('n', g::text), now(), now()
        FROM generate_series(1, {size}) AS g;
        ANALYZE subscribers_subscriber;
    """, DB_NAME)
    SubscriberList.objects.filter(pk=lst.pk).update(subscriber_count=size)


def new_campaign(owner, list_name: str, channel: str):
    """A started, fanned-out campaign whose messages are queued; nothing queued for a worker yet."""
    from campaigns import services
    from inboxerr.actors import Actor

    actor = Actor(user=owner, source="command")
    campaign = services.campaign_create(actor=actor, owner=owner, name=f"bench {list_name} {time.time()}", channel=channel,
                                        subject="Bench #{{ n }}" if channel == "email" else "",
                                        message_content=TEMPLATE, list_names=[list_name])
    campaign = services.campaign_start(actor=actor, campaign=campaign)
    campaign = services.campaign_fan_out(campaign_id=campaign.pk)
    clear_queue()
    return campaign


def kick(redis: bool, total: int) -> None:
    """Queue the dispatcher runs on the clusters' broker (the ORM, or Redis for the Redis grid)."""
    env = worker_env(DISPATCH_WORKERS=str(total), **({"REDIS_URL": REDIS_URL} if redis else {}))
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    "from campaigns import services; services.kick_dispatchers()"], cwd=ROOT, env=env, check=True,
                   capture_output=True)


def run_inboxerr(campaign, clusters: list[int], redis: bool = False, **env: str) -> float:
    """Start the clusters (`clusters`: workers in each), queue the dispatcher runs, and wait until
    the campaign completes; returns the wall time from the kick."""
    from campaigns.models import Campaign, CampaignStatus

    total = sum(clusters)
    extra = {"REDIS_URL": REDIS_URL} if redis else {}
    procs = [start_cluster(n, total, **extra, **env) for n in clusters]
    try:
        time.sleep(2.0)  # the clusters' start-up, outside the measured span either way
        started = time.perf_counter()
        kick(redis, total)
        while Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).exists():
            time.sleep(0.1)
        return time.perf_counter() - started
    finally:
        for proc in procs:
            stop_cluster(proc)
        clear_queue()


def check(receiver: Receiver, expected: set[str], label: str) -> dict:
    """Exactly once: every expected id received, none twice, nothing else."""
    stats = receiver.ask("ids")
    got = set(stats.pop("ids"))
    stats["missing"] = len(expected - got)
    stats["unexpected"] = len(got - expected)
    stats["rate"] = (stats["received"] - 1) / stats["span"] if stats["span"] else 0.0
    ok = stats["duplicates"] == 0 and stats["missing"] == 0 and stats["unexpected"] == 0
    stats["exactly_once"] = ok
    if not ok:
        print(f"  !! {label}: not exactly once: {stats}")
    receiver.ask("reset")
    return stats


def campaign_ids(campaign, smtp: bool = False) -> set[str]:
    from django.conf import settings

    from campaigns.models import Message

    uids = Message.objects.filter(campaign=campaign).exclude(status="skipped").values_list("uid", flat=True)
    if smtp:
        return {f"<{uid}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>" for uid in uids}
    return {str(uid) for uid in uids}


def line(label: str, stats: dict, wall: float | None = None) -> str:
    extra = f", wall {wall:.2f} s" if wall is not None else ""
    return (f"{label}: {stats['rate']:,.0f} msg/s ({stats['received']:,} received in {stats['span']:.2f} s{extra}; "
            f"duplicates {stats['duplicates']}, missing {stats['missing']}; load {os.getloadavg()[0]:.1f})")


def bench_http(owner, messages: int, workers_list: list[int], batch: int) -> None:
    from campaigns.models import Campaign, CampaignStatus

    gateway = Receiver("http")
    url = f"http://127.0.0.1:{gateway.port}/send"
    slice_list(owner.pk, messages, "phones", phone_unique=True)
    env = {"SMS_BACKEND": "campaigns.channels.sms.HttpGatewayBackend", "SMS_GATEWAY_URL": url, "SMS_GATEWAY_TOKEN": ""}
    try:
        for workers in workers_list:
            campaign = new_campaign(owner, "phones", "sms")
            expected = campaign_ids(campaign)
            wall = run_parallel([["--standalone-http", str(campaign.pk), url, str(batch)]] * workers)
            alone = check(gateway, expected, "stand-alone")
            Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.COMPLETED)
            print(line(f"HTTP gateway, stand-alone loop, {workers} process(es)", alone, wall))

            campaign = new_campaign(owner, "phones", "sms")
            expected = campaign_ids(campaign)
            wall = run_inboxerr(campaign, [workers], **env)
            ours = check(gateway, expected, "Inboxerr")
            print(line(f"HTTP gateway, Inboxerr, {workers} worker(s)", ours, wall))
            print(f"  ratio Inboxerr / stand-alone, {workers}: {ours['rate'] / alone['rate']:.2f}")
    finally:
        gateway.stop()


def bench_smtp(owner, messages: int, workers_list: list[int]) -> None:
    smtp = Receiver("smtp")
    env = {"EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}"}
    slice_list(owner.pk, messages, "slice")
    try:
        for workers in workers_list:
            share = messages // workers
            wall = run_parallel([["--standalone-smtp", str(smtp.port), str(share), str(i * share)] for i in range(workers)])
            alone = check(smtp, {f"<baseline-{i}@bench>" for i in range(share * workers)}, "smtplib")
            print(line(f"SMTP, protocol alone (smtplib), {workers} process(es)", alone, wall))

            campaign = new_campaign(owner, "slice", "email")
            wall = run_inboxerr(campaign, [workers], **env)
            ours = check(smtp, campaign_ids(campaign, smtp=True), "Inboxerr")
            print(line(f"SMTP, Inboxerr email channel, {workers} worker(s)", ours, wall))
            print(f"  ratio Inboxerr / protocol alone, {workers}: {ours['rate'] / alone['rate']:.2f}")
    finally:
        smtp.stop()


def bench_grid(owner, rates: list[int], layouts: list[list[int]], buckets: list[str], seconds: float) -> None:
    """Achieved rate against the limit; messages enough for `seconds` at the limit."""
    import redis as redis_lib

    from campaigns.models import RateLimit

    gateway = Receiver("http")
    url = f"http://127.0.0.1:{gateway.port}/send"
    env = {"SMS_BACKEND": "campaigns.channels.sms.HttpGatewayBackend", "SMS_GATEWAY_URL": url, "SMS_GATEWAY_TOKEN": ""}
    try:
        for bucket in buckets:
            for rate in rates:
                count = max(int(rate * seconds), 100)
                slice_list(owner.pk, count, f"grid{count}", phone_unique=True)
                for layout in layouts:
                    # Start empty (no burst to spend): the achieved rate is the refill rate.
                    RateLimit.objects.update_or_create(name="sms", defaults={
                        "rate": rate, "burst": max(1, rate // 20), "enabled": True, "tokens": 0})
                    redis_lib.Redis.from_url(REDIS_URL).delete("inboxerr:ratelimit:sms")
                    campaign = new_campaign(owner, f"grid{count}", "sms")
                    wall = run_inboxerr(campaign, layout, redis=bucket == "redis", **env)
                    stats = check(gateway, campaign_ids(campaign), "grid")
                    off = 100 * (stats["rate"] - rate) / rate
                    print(f"rate limit {rate:,}/s, bucket {bucket}, {sum(layout)} worker(s) as {'+'.join(map(str, layout))}: "
                          f"{stats['rate']:,.1f} msg/s ({off:+.1f}%{' within 2%' if abs(off) <= 2 else ' OUTSIDE 2%'}); "
                          f"{stats['received']:,} in {stats['span']:.1f} s, wall {wall:.1f} s; duplicates {stats['duplicates']}, "
                          f"missing {stats['missing']}", flush=True)
        RateLimit.objects.filter(name="sms").delete()
    finally:
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--smtp-messages", type=int, default=5_000)
    parser.add_argument("--workers", default="1,2", help="worker process counts to compare (default 1,2)")
    parser.add_argument("--batch", type=int, default=100, help="the stand-alone loop's claim size (default 100)")
    parser.add_argument("--only", default="http,smtp", help="http, smtp (default both)")
    parser.add_argument("--fan-out", type=int, default=0, metavar="N", help="also time the fan-out of N subscribers")
    parser.add_argument("--own-session", action="store_true",
                        help="each qcluster in a session of its own (the placement before; see OWN_SESSION)")
    parser.add_argument("--grid", action="store_true", help="the rate-limit grid")
    parser.add_argument("--grid-rates", default="10,50,200,1000")
    parser.add_argument("--grid-workers", default="1,1+1,2+2", help="workers per qcluster, per layout")
    parser.add_argument("--grid-buckets", default="postgresql,redis")
    parser.add_argument("--grid-seconds", type=float, default=15.0)
    args = parser.parse_args()
    global OWN_SESSION
    OWN_SESSION = args.own_session

    print(f"date {time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores; {platform.machine()}; "
          f"Python {platform.python_version()}; load {os.getloadavg()[0]:.1f}; "
          f"qclusters in {'their own sessions' if OWN_SESSION else 'this session'}")
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'") != "1":
        psql(f"CREATE DATABASE {DB_NAME}")
    print("PostgreSQL", psql("SHOW server_version"))
    os.environ.update(worker_env())
    os.environ["DJANGO_SETTINGS_MODULE"] = "inboxerr.settings"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=worker_env(), check=True)
    import logging

    import django

    django.setup()
    logging.getLogger("django-q").setLevel(logging.WARNING)
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns.models import RateLimit
    from inboxerr.actors import Actor

    owner, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
    RateLimit.objects.all().delete()
    psql("TRUNCATE subscribers_subscriber, campaigns_message, campaigns_campaign_lists, campaigns_campaign CASCADE", DB_NAME)
    clear_queue()
    workers_list = [int(n) for n in args.workers.split(",")]
    only = set(args.only.split(",")) if args.only else set()

    if args.fan_out:
        print(f"seeded {args.fan_out:,} subscribers in {seed(args.fan_out, owner.pk):.1f} s")
        from campaigns.models import Campaign

        actor = Actor.system("command")
        campaign = services.campaign_create(actor=Actor(user=owner, source="command"), owner=owner, name="bench fan-out",
                                            channel="email", subject="Bench", message_content=TEMPLATE,
                                            list_names=["million"])
        campaign = services.campaign_start(actor=actor, campaign=campaign)
        started = time.perf_counter()
        campaign = services.campaign_fan_out(campaign_id=campaign.pk)
        print(f"fan-out: {campaign.total_count:,} messages ({campaign.skipped_count:,} skipped) in "
              f"{time.perf_counter() - started:.1f} s")
        services.campaign_cancel(actor=actor, campaign=Campaign.objects.get(pk=campaign.pk))
        psql("TRUNCATE campaigns_message", DB_NAME)
        clear_queue()

    if "http" in only:
        bench_http(owner, args.messages, workers_list, args.batch)
    if "smtp" in only:
        bench_smtp(owner, args.smtp_messages, workers_list)
    if args.grid:
        layouts = [[int(n) for n in layout.split("+")] for layout in args.grid_workers.split(",")]
        bench_grid(owner, [int(r) for r in args.grid_rates.split(",")], layouts, args.grid_buckets.split(","),
                   args.grid_seconds)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-http":
        serve_http()
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve-smtp":
        serve_smtp()
    elif len(sys.argv) > 1 and sys.argv[1] == "--standalone-http":
        standalone_http(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--standalone-smtp":
        standalone_smtp(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
