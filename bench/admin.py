#!/usr/bin/env python
"""The admin at 1M subscribers and 1M messages: the index (operations dashboard), every change list
(first page, a search, a filter) and the job pages, each through Django's full request stack.

Builds (or reuses) a PostgreSQL database of its own, migrated to the app's current migrations and
seeded set-based (INSERT ... SELECT over generate_series, the secondary indexes of the two big
tables dropped during the load and rebuilt from their own definitions): 1,000,000 subscribers over
five lists of one operator, 1,000,000 messages (900,000 of 30 campaigns, 100,000 items of 20
batches), 2,000 import jobs, 200,000 audit rows, 24 hours of the dashboard's activity rollup.

Then requests each page with django.test.Client (force_login: the superuser, and the operator
for the pages whose owner filter differs) N times after 2 warm-ups, and prints p50/p95 per page,
flagging any p95 over 500 ms. Beside each page, the baseline of the same run: the page's slowest
SQL statement run alone over psycopg (p50 of N), and the ratio page p50 / that SQL's p50; and once,
a bare Django page (GET /admin/login/: the admin's fixed login template, no data) as the floor
of the stack.

    .venv/bin/python bench/admin.py                 # migrate, seed if needed, measure (N=20)
    .venv/bin/python bench/admin.py --reseed -n 30  # drop the database and seed again
    .venv/bin/python bench/admin.py --only index,messages --explain   # + EXPLAIN of slowest SQL
    .venv/bin/python bench/admin.py --messages 10000000 --only index  # 10M messages, own database

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/inboxerr_bench_admin).
It never touches the application's own database. Not a test: it prints figures; the analysis
lives in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inboxerr_bench_admin")
MESSAGES = 1_000_000
TARGET_MS = 500.0
SUBSCRIBERS = 1_000_000
LISTS = [("newsletter", "email", 900), ("customers", "email", 60), ("webinar-2026", "email", 25),
         ("vip", "email", 10), ("sms-alerts", "phone", 5)]  # share of each 1000 subscribers
CAMPAIGNS = 30
BATCHES = 20
BATCH_ITEMS = 5_000  # per batch; campaigns hold the rest of MESSAGES
IMPORT_JOBS = 2_000
AUDIT_ROWS = 200_000
SEED_VERSION = 1


# --- database plumbing (before Django is set up) ---------------------------------------------------


def database_prepare(url: str, *, reseed: bool) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reseed:
            print(f"dropping database {name}")
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            print(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "inboxerr.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use-0123456789")
    os.environ["DEBUG"] = "false"
    os.environ["ALLOWED_HOSTS"] = "testserver"  # django.test.Client's host
    sys.path.insert(0, str(ROOT))
    import warnings

    warnings.filterwarnings("ignore", message="SECRET_KEY is not set")
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()


# --- seeding ----------------------------------------------------------------------------------------


def _sql(statement: str, params: list | None = None) -> None:
    """Run one statement; `%` is SQL's modulo here, `%s` a parameter."""
    from django.db import connection

    if params:
        statement = statement.replace("%", "%%").replace("%%s", "%s")
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _seeded() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        cursor.execute("SELECT value FROM bench_meta WHERE key = 'seed'")
        row = cursor.fetchone()
    value = row[0] if row else None
    value = json.loads(value) if isinstance(value, str) else value
    return bool(value) and value.get("version") == SEED_VERSION and value.get("messages", 1_000_000) == MESSAGES


def _secondary_indexes(table: str) -> list[tuple[str, str]]:
    """Indexes not backing a constraint: dropped during the load, rebuilt from their definitions."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.schemaname) || '.' || "
            "quote_ident(i.indexname))::regclass)", [table])
        return cursor.fetchall()


def seed() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from inboxerr.accounts import roles_ensure

    started = time.perf_counter()
    _sql("DELETE FROM bench_meta WHERE key = 'seed'")
    tables = ["subscribers_subscriber", "campaigns_message"]
    _sql("TRUNCATE subscribers_subscriber, subscribers_subscriberlist, campaigns_message, campaigns_campaign, "
         "campaigns_messagebatch, campaigns_batchstream, imports_importjob, audit_auditlog, "
         "operations_activityminute, operations_activitymark, operations_rollupstate, inboxerr_workerheartbeat "
         "CASCADE")
    User = get_user_model()
    group = roles_ensure()
    root, _ = User.objects.get_or_create(username="bench_root", defaults={"is_superuser": True, "is_staff": True})
    owner, _ = User.objects.get_or_create(username="bench_owner", defaults={"is_staff": True})
    other, _ = User.objects.get_or_create(username="bench_other", defaults={"is_staff": True})
    owner.groups.add(group)
    other.groups.add(group)
    dropped = {table: _secondary_indexes(table) for table in tables}
    with transaction.atomic():
        for table, indexes in dropped.items():
            for name, _ in indexes:
                _sql(f'DROP INDEX "{name}"')
        list_ids = []
        for name, key_field, _ in LISTS:
            _sql("INSERT INTO subscribers_subscriberlist (owner_id, name, description, key_field, subscriber_count, "
                 "created_at) VALUES (%s, %s, '', %s, 0, now() - interval '400 days')", [owner.pk, name, key_field])
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM subscribers_subscriberlist WHERE owner_id = %s ORDER BY id", [owner.pk])
            list_ids = [row[0] for row in cursor.fetchall()]
        # Which list each of the 1000 slots of i % 1000 goes to.
        bounds, total = [], 0
        for (name, key_field, share), list_id in zip(LISTS, list_ids):
            bounds.append((total, total + share, list_id, key_field))
            total += share
        case = " ".join(f"WHEN i % 1000 < {hi} THEN {lid}" for lo, hi, lid, _ in bounds)
        phone_lists = [str(lid) for _, _, lid, kf in bounds if kf == "phone"]
        t = time.perf_counter()
        _sql(f"""
            INSERT INTO subscribers_subscriber (list_id, key, email, phone, name, status, standard_fields,
                                                custom_fields, created_at, updated_at)
            SELECT list_id,
                   CASE WHEN list_id IN ({",".join(phone_lists)}) THEN phone ELSE email END,
                   email, phone, name,
                   (ARRAY['active','active','active','active','active','active','active','active','active',
                          'active','active','active','active','active','active','active','active',
                          'inactive','unsubscribed','bounced'])[1 + i % 20],
                   jsonb_build_object('city', (ARRAY['London','Paris','Berlin','Lisbon'])[1 + i % 4]),
                   '{{}}'::jsonb, created, created
            FROM (
                SELECT i, CASE {case} END AS list_id,
                       lower(f) || '.' || lower(l) || i || '@' || (ARRAY['gmail.com','yahoo.com','example.org',
                            'outlook.com'])[1 + i % 4] AS email,
                       '+1' || (200 + i % 800) || lpad((i % 10000000)::text, 7, '0') AS phone,
                       f || ' ' || l AS name,
                       now() - (i % 700) * interval '1 day' - (i % 86400) * interval '1 second' AS created
                FROM generate_series(1, %s) AS i,
                     LATERAL (SELECT (ARRAY['Olivia','Liam','Emma','Noah','Ava','Oliver','Sophia','Elijah',
                                            'Mia','James'])[1 + i % 10] AS f,
                                     (ARRAY['Smith','Johnson','Garcia','Miller','Davis','Lopez','Wilson',
                                            'Moore','Clark','Young','King','Hill'])[1 + (i / 10) % 12] AS l) n
            ) s""", [SUBSCRIBERS])
        print(f"  subscribers: {time.perf_counter() - t:.1f} s")
        _sql("UPDATE subscribers_subscriberlist l SET subscriber_count = c.n FROM "
             "(SELECT list_id, count(*) n FROM subscribers_subscriber GROUP BY list_id) c WHERE c.list_id = l.id")
        # Campaigns: 25 finished, 3 running, 2 paused; messages spread over them by i % 30.
        _sql("""
            INSERT INTO campaigns_campaign (id, owner_id, kind, name, channel, message_content, subject, status,
                status_reason, started_at, finished_at, total_count, sent_count, failed_count, skipped_count,
                unknown_count, cancelled_count, job_data, created_at, updated_at)
            SELECT md5('campaign' || c)::uuid, %s, 'campaign', 'Campaign ' || c || ' ' ||
                   (ARRAY['Spring sale','Weekly digest','Reminder','Launch','Survey'])[1 + c % 5],
                   CASE WHEN c % 6 = 0 THEN 'sms' ELSE 'email' END, 'Hello {{ name }}', 'News',
                   CASE WHEN c <= 25 THEN 'completed' WHEN c <= 28 THEN 'running' ELSE 'paused' END, '',
                   now() - (31 - c) * interval '1 day', CASE WHEN c <= 25 THEN now() - (30 - c) * interval '1 day' END,
                   0, 0, 0, 0, 0, 0, '{}'::jsonb, now() - (32 - c) * interval '1 day', now()
            FROM generate_series(1, %s) c""", [owner.pk, CAMPAIGNS])
        t = time.perf_counter()
        _sql("""
            INSERT INTO campaigns_message (uid, campaign_id, subscriber_id, channel, recipient, variables, status,
                skip_reason, attempts, lease_token, last_error, provider_message_id, sequence, segments, sent_at,
                created_at)
            SELECT md5('m' || i)::uuid, md5('campaign' || c)::uuid, NULL,
                   CASE WHEN c % 6 = 0 THEN 'sms' ELSE 'email' END, 'person' || i || '@example.org', '{}'::jsonb,
                   CASE WHEN c > 25 AND i % 2 = 0 THEN 'queued' WHEN i % 50 = 7 THEN 'failed'
                        WHEN i % 100 = 3 THEN 'skipped' ELSE 'sent' END,
                   '', 1, '', CASE WHEN i % 50 = 7 THEN '550 5.1.1 mailbox unavailable' ELSE '' END, '', 0, 0,
                   CASE WHEN (c <= 25 OR i % 2 = 1) AND i % 50 <> 7 AND i % 100 <> 3
                        THEN now() - (31 - c) * interval '1 day' + (i % 3600) * interval '1 second' END,
                   now() - (31 - c) * interval '1 day'
            FROM generate_series(1, %s) i, LATERAL (SELECT 1 + i % %s AS c) cc""",
             [MESSAGES - BATCHES * BATCH_ITEMS, CAMPAIGNS])
        _sql("""
            INSERT INTO campaigns_messagebatch (batch_id, owner_id, sequence, status, status_reason, total_items,
                vendor_counts, sent_count, failed_count, skipped_count, processing_time_ms, created_at, updated_at,
                started_at, committed_at, finished_at)
            SELECT substr(md5('batch' || b), 1, 16), %s, b,
                   CASE WHEN b <= 16 THEN 'committed' WHEN b = 17 THEN 'failed' WHEN b = 18 THEN 'processing'
                        ELSE 'pending' END, '', %s, '{}'::jsonb, 0, 0, 0, 120, now() - (21 - b) * interval '1 hour',
                   now(), CASE WHEN b <= 18 THEN now() - (21 - b) * interval '1 hour' END,
                   CASE WHEN b <= 16 THEN now() - (20 - b) * interval '1 hour' END,
                   CASE WHEN b <= 17 THEN now() - (20 - b) * interval '1 hour' END
            FROM generate_series(1, %s) b""", [other.pk, BATCH_ITEMS, BATCHES])
        _sql("""
            INSERT INTO campaigns_message (uid, batch_id, channel, recipient, variables, status, skip_reason,
                attempts, lease_token, last_error, provider_message_id, sequence, segments, sent_at, created_at,
                request_id, vendor_name, content)
            SELECT md5('b' || b.id || '-' || k)::uuid, b.id, 'sms', '+1415' || lpad(k::text, 7, '0'), '{}'::jsonb,
                   CASE WHEN b.sequence >= 19 OR (b.sequence = 18 AND k > 2000) THEN 'queued'
                        WHEN b.sequence = 17 AND k % 100 = 0 THEN 'failed' ELSE 'sent' END,
                   '', 1, '', '', '', k, 1, CASE WHEN b.sequence <= 18 THEN b.started_at END, b.created_at,
                   'r-' || k, 'Acme', 'Your code is ' || k
            FROM campaigns_messagebatch b, generate_series(1, %s) k""", [BATCH_ITEMS])
        print(f"  messages: {time.perf_counter() - t:.1f} s")
        _sql("""
            UPDATE campaigns_campaign c SET total_count = m.total, sent_count = m.sent, failed_count = m.failed,
                   skipped_count = m.skipped
            FROM (SELECT campaign_id, count(*) total, count(*) FILTER (WHERE status = 'sent') sent,
                         count(*) FILTER (WHERE status = 'failed') failed,
                         count(*) FILTER (WHERE status = 'skipped') skipped
                  FROM campaigns_message WHERE campaign_id IS NOT NULL GROUP BY campaign_id) m
            WHERE m.campaign_id = c.id""")
        _sql("""
            UPDATE campaigns_messagebatch b SET sent_count = m.sent, failed_count = m.failed,
                   status_reason = CASE WHEN m.failed > 0 THEN m.failed || ' of ' || b.total_items || ' items failed'
                                   ELSE '' END
            FROM (SELECT batch_id, count(*) FILTER (WHERE status = 'sent') sent,
                         count(*) FILTER (WHERE status = 'failed') failed
                  FROM campaigns_message WHERE batch_id IS NOT NULL GROUP BY batch_id) m
            WHERE m.batch_id = b.id""")
        _sql("INSERT INTO campaigns_batchstream (owner_id, last_sequence, lease_token) VALUES (%s, %s, '')",
             [other.pk, BATCHES])
        _sql("""
            INSERT INTO imports_importjob (id, owner_id, list_id, list_name, source, filename, file_path, sha256,
                size_bytes, status, total_rows, processed_rows, created, updated, duplicates, invalid, progress,
                heartbeat_at, started_at, finished_at, error_message, retry_count, checkpoint, stats, options,
                worker_token, created_at, updated_at)
            SELECT md5('job' || j)::uuid, %s, %s, 'newsletter', 'csv', 'upload-' || j || '.csv', '',
                   md5('file' || j), 50000000,
                   CASE WHEN j = %s THEN 'processing' WHEN j % 100 = 0 THEN 'failed' ELSE 'completed' END,
                   100000, CASE WHEN j = %s THEN 40000 ELSE 100000 END, 90000, 5000, 4000, 1000,
                   CASE WHEN j = %s THEN 40 ELSE 100 END, now(), now() - (%s - j) * interval '1 hour',
                   CASE WHEN j <> %s THEN now() - (%s - j) * interval '1 hour' + interval '5 minutes' END,
                   CASE WHEN j % 100 = 0 THEN 'the file could not be read: invalid byte at 1234' ELSE '' END, 0,
                   CASE WHEN j = %s THEN '{"offset": 20000000, "row": 40000}'::jsonb ELSE '{}'::jsonb END,
                   '{}'::jsonb, '{}'::jsonb, '', now() - (%s - j) * interval '1 hour', now()
            FROM generate_series(1, %s) j""",
             [owner.pk, list_ids[0], IMPORT_JOBS, IMPORT_JOBS, IMPORT_JOBS, IMPORT_JOBS, IMPORT_JOBS, IMPORT_JOBS,
              IMPORT_JOBS, IMPORT_JOBS, IMPORT_JOBS])
        _sql("""
            INSERT INTO audit_auditlog (actor_id, owner_id, action, entity_type, entity_id, user_action, before,
                after, metadata, created_at)
            SELECT %s, %s, (ARRAY['create','update','delete','import','export'])[1 + a % 5],
                   (ARRAY['subscriber','list','import_job','campaign','suppression'])[1 + (a / 5) % 5],
                   (a % 50000)::text, 'Changed subscriber ' || a, NULL, '{"status": "active"}'::jsonb, '{}'::jsonb,
                   now() - (a % 400) * interval '1 day' - (a % 86400) * interval '1 second'
            FROM generate_series(1, %s) a""", [owner.pk, owner.pk, AUDIT_ROWS])
        # 24 hours of the dashboard's rollup: sends most minutes, import rows some.
        _sql("""
            INSERT INTO operations_activityminute (minute, owner_id, kind, channel, count)
            SELECT date_trunc('minute', now()) - m * interval '1 minute', %s, k.kind, k.channel,
                   CASE WHEN k.kind = 'import_rows' THEN (CASE WHEN m % 240 < 20 THEN 20000 + m * 7 % 5000 ELSE 0 END)
                        WHEN k.kind = 'failed' THEN m % 7 ELSE 300 + (m * 37) % 400 END
            FROM generate_series(0, 1439) m,
                 (VALUES ('sent', 'email'), ('failed', 'email'), ('import_rows', '')) k(kind, channel)""",
             [owner.pk])
        _sql("DELETE FROM operations_activityminute WHERE count = 0")
        _sql("INSERT INTO inboxerr_workerheartbeat (name, beat_at, hostname, pid) VALUES "
             "('qcluster', now(), 'bench', 1)")
        _sql("SET CONSTRAINTS ALL IMMEDIATE")  # deferred foreign-key checks would block CREATE INDEX
        t = time.perf_counter()
        for table, indexes in dropped.items():
            for name, definition in indexes:
                _sql(definition)
        print(f"  indexes rebuilt: {time.perf_counter() - t:.1f} s")
        _sql("INSERT INTO bench_meta (key, value) VALUES ('seed', %s) ON CONFLICT (key) DO UPDATE SET value = "
             "excluded.value", [json.dumps({"version": SEED_VERSION, "messages": MESSAGES, "at": time.time()})])
    _sql("VACUUM ANALYZE")  # outside the transaction: Django runs in autocommit here
    print(f"seeded in {time.perf_counter() - started:.0f} s")


# --- measuring --------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def scenarios() -> list[tuple[str, str, str]]:
    """(name, user, url): the pages measured."""
    from django.contrib.auth import get_user_model

    from audit.models import AuditLog
    from campaigns.models import Campaign, Message, MessageBatch
    from imports.models import ImportJob
    from subscribers.models import Subscriber, SubscriberList

    owner = get_user_model().objects.get(username="bench_owner")
    newsletter = SubscriberList.objects.get(owner=owner, name="newsletter")
    subscriber = Subscriber.objects.filter(list=newsletter).order_by("id")[500_000:500_001].get()
    running = Campaign.objects.filter(status="running", failed_count__gt=0).order_by("name").first()
    job = ImportJob.objects.filter(status="processing").first()
    batch = MessageBatch.objects.get(status="processing")
    message = Message.objects.filter(campaign=running, status="failed").order_by("id").first()
    audit = AuditLog.objects.order_by("id")[12_345:12_346].get()  # entity id "12346": a specific one
    a = "/admin"
    return [
        ("index", "root", f"{a}/"),
        ("index (operator)", "owner", f"{a}/"),
        ("subscribers", "root", f"{a}/subscribers/subscriber/"),
        ("subscribers ?q=exact email", "root", f"{a}/subscribers/subscriber/?q={subscriber.email}"),
        ("subscribers ?q=name fragment", "root", f"{a}/subscribers/subscriber/?q=garcia"),
        ("subscribers ?status=bounced", "root", f"{a}/subscribers/subscriber/?status__exact=bounced"),
        ("subscribers ?list=newsletter", "root", f"{a}/subscribers/subscriber/?list={newsletter.pk}"),
        ("subscribers (operator)", "owner", f"{a}/subscribers/subscriber/"),
        ("lists", "root", f"{a}/subscribers/subscriberlist/"),
        ("lists ?q=news", "root", f"{a}/subscribers/subscriberlist/?q=news"),
        ("lists ?key_field=phone", "root", f"{a}/subscribers/subscriberlist/?key_field__exact=phone"),
        ("import jobs", "root", f"{a}/imports/importjob/"),
        ("import jobs ?q=upload-1999.csv", "root", f"{a}/imports/importjob/?q=upload-1999.csv"),
        ("import jobs ?status=failed", "root", f"{a}/imports/importjob/?status__exact=failed"),
        ("campaigns", "root", f"{a}/campaigns/campaign/"),
        ("campaigns ?q=spring", "root", f"{a}/campaigns/campaign/?q=spring"),
        ("campaigns ?status=running", "root", f"{a}/campaigns/campaign/?status__exact=running"),
        ("messages", "root", f"{a}/campaigns/message/"),
        ("messages ?q=exact recipient", "root", f"{a}/campaigns/message/?q=person123457@example.org"),
        ("messages ?status=failed", "root", f"{a}/campaigns/message/?status__exact=failed"),
        ("messages of a campaign, failed", "root",
         f"{a}/campaigns/message/?campaign__id__exact={running.pk}&status__exact=failed"),
        ("messages (operator)", "owner", f"{a}/campaigns/message/"),
        ("batches", "root", f"{a}/campaigns/messagebatch/"),
        ("batches ?q=batch id", "root", f"{a}/campaigns/messagebatch/?q={batch.batch_id}"),
        ("batches ?status=failed", "root", f"{a}/campaigns/messagebatch/?status__exact=failed"),
        ("batch items", "root", f"{a}/campaigns/message/?batch__id__exact={batch.pk}"),
        ("audit log", "root", f"{a}/audit/auditlog/"),
        ("audit log ?q=entity id", "root", f"{a}/audit/auditlog/?q={audit.entity_id}"),
        ("audit log ?action=import", "root", f"{a}/audit/auditlog/?action__exact=import"),
        ("suppressions", "root", f"{a}/subscribers/suppression/"),
        ("job page: import job", "root", f"{a}/imports/importjob/{job.pk}/change/"),
        ("job page: campaign", "root", f"{a}/campaigns/campaign/{running.pk}/change/"),
        ("job page: batch", "root", f"{a}/campaigns/messagebatch/{batch.pk}/change/"),
        ("subscriber page", "root", f"{a}/subscribers/subscriber/{subscriber.pk}/change/"),
        ("list page", "root", f"{a}/subscribers/subscriberlist/{newsletter.pk}/change/"),
        ("message page", "root", f"{a}/campaigns/message/{message.pk}/change/"),
    ]


def time_sql_alone(sql: str, runs: int) -> float:
    """p50 in ms of one statement over a fresh psycopg connection (no Django)."""
    import psycopg

    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute(sql).fetchall()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            conn.execute(sql).fetchall()
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def explain(sql: str) -> str:
    import psycopg

    with psycopg.connect(DB_URL, autocommit=True) as conn:
        return "\n".join(row[0] for row in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall())


def measure(runs: int, only: list[str] | None, show_explain: bool) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    users = {"root": get_user_model().objects.get(username="bench_root"),
             "owner": get_user_model().objects.get(username="bench_owner")}
    clients = {}
    for key, user in users.items():
        clients[key] = Client()
        clients[key].force_login(user)
    floor = []
    anonymous = Client()
    for _ in range(runs + 2):
        t = time.perf_counter()
        assert anonymous.get("/admin/login/").status_code == 200
        floor.append((time.perf_counter() - t) * 1000)
    floor = floor[2:]
    print(f"\nfloor: a fixed admin template, no query of the data (GET /admin/login/) p50 {statistics.median(floor):.1f} ms, "
          f"p95 {pct(floor, 95):.1f} ms\n")
    print(f"{'page':<36} {'p50':>7} {'p95':>7} {'max':>7} {'queries':>7} {'SQL sum':>7} {'SQL alone':>9} {'ratio':>6}  verdict")
    results = []
    for name, who, url in scenarios():
        if only and not any(o in name for o in only):
            continue
        client = clients[who]
        for _ in range(2):
            response = client.get(url)
            assert response.status_code == 200, (name, url, response.status_code)
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        queries = list(captured.captured_queries)  # the next request's start empties the log
        slowest = max(queries, key=lambda q: float(q["time"]))["sql"]
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - t) * 1000)
        sql_ms = time_sql_alone(slowest, runs)
        p50, p95 = statistics.median(times), pct(times, 95)
        verdict = "OVER 500 ms" if p95 > TARGET_MS else "ok"
        sql_sum = sum(float(q["time"]) for q in queries) * 1000
        print(f"{name:<36} {p50:7.1f} {p95:7.1f} {max(times):7.1f} {len(queries):7d} {sql_sum:7.1f} "
              f"{sql_ms:9.1f} {p50 / sql_ms if sql_ms else 0:6.1f}  {verdict}")
        results.append({"page": name, "user": who, "url": url, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
                        "max_ms": round(max(times), 1), "queries": len(queries), "sql_sum_ms": round(sql_sum, 1),
                        "slowest_sql_alone_p50_ms": round(sql_ms, 1), "slowest_sql": slowest[:2000]})
        if show_explain or p95 > TARGET_MS:
            print("  slowest SQL:", slowest[:400])
            print("  " + explain(slowest).replace("\n", "\n  "))
    results.append(rollup_timing(runs))
    over = [r["page"] for r in results if r["p95_ms"] > TARGET_MS]
    print(f"\n{len(results)} pages, {len(over)} over {TARGET_MS:.0f} ms" + (f": {', '.join(over)}" if over else ""))
    return results


def rollup_timing(runs: int) -> dict:
    """The dashboard's every-minute rollup over this database (reads the running jobs' counters;
    the first run only sets the marks)."""
    from operations.services import activity_rollup

    activity_rollup()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        activity_rollup()
        times.append((time.perf_counter() - t) * 1000)
    p50, p95 = statistics.median(times), pct(times, 95)
    print(f"{'rollup task (every minute, not a page)':<36} {p50:7.1f} {p95:7.1f} {max(times):7.1f}")
    return {"page": "rollup task", "user": "-", "url": "-", "p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
            "max_ms": round(max(times), 1)}


def configure(messages: int) -> None:
    global MESSAGES, DB_URL
    MESSAGES = messages
    if messages != 1_000_000 and "BENCH_DATABASE_URL" not in os.environ:
        DB_URL = f"{DB_URL}_{messages}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=20, help="timed requests per page (after 2 warm-ups)")
    parser.add_argument("--reseed", action="store_true", help="drop the bench database and seed again")
    parser.add_argument("--only", help="comma-separated parts of page names to measure")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest SQL")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--messages", type=int, default=MESSAGES,
                        help="messages to seed (default 1,000,000); another count gets a database of its own, "
                             "inboxerr_bench_admin_<count> unless BENCH_DATABASE_URL is set")
    args = parser.parse_args()
    configure(args.messages)
    database_prepare(DB_URL, reseed=args.reseed)
    django_setup(DB_URL)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not _seeded():
        print("seeding (set-based; a few minutes)")
        seed()
    print(f"{platform.node()}: Python {platform.python_version()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}")
    results = measure(args.runs, args.only.split(",") if args.only else None, args.explain)
    if args.json:
        Path(args.json).write_text(json.dumps({"at": time.strftime("%Y-%m-%d %H:%M"), "runs": args.runs,
                                               "pages": results}, indent=2))


if __name__ == "__main__":
    main()
