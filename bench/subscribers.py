#!/usr/bin/env python
"""Subscribers at a million rows: search, list pages, list counts and the CSV export.

Migrates a PostgreSQL database of its own to the app's current migrations and seeds 1,000,000
subscribers of one owner over five lists (set-based: one INSERT ... SELECT over
generate_series, the secondary indexes the migrations created dropped during the load and
rebuilt from their own definitions), then times the real API through Django's full request
stack (URL routing, DRF authentication/permissions, selectors, serializers, renderers). The
export is streamed in a child process whose peak RSS is measured alone, twice: the 900k list of
that database, and a 1,000,000-row list in a second database seeded the same way with one list
(`<bench database>_export`).

    .venv/bin/python bench/subscribers.py               # migrate, seed if needed, then measure
    .venv/bin/python bench/subscribers.py --reseed      # drop the bench databases and seed again
    .venv/bin/python bench/subscribers.py -n 50 --explain   # + EXPLAIN ANALYZE of each slowest SQL
    .venv/bin/python bench/subscribers.py --only search_prefix,export --json out.json

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/inboxerr_bench).
It never touches the application's own database. Not a test: it prints figures; the analysis
lives in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/inboxerr_bench"
DB_URL = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB_URL)

TOTAL = 1_000_000
OWNER = "bench_owner"
BIG_LIST = "newsletter"
# (name, key_field, share of every 1000 seeded rows) per database layout.
LAYOUTS = {
    # The measured database: 900k / 60k / 25k / 10k / 5k.
    "main": [
        ("newsletter", "email", 900),
        ("customers", "email", 60),
        ("webinar-2026", "email", 25),
        ("vip", "email", 10),
        ("sms-alerts", "phone", 5),
    ],
    # The export database: the same rows, all on one 1,000,000-row list.
    "export": [("newsletter", "email", 1000)],
}
API = "/api/v1/subscribers"

FIRST = (
    "Olivia Liam Emma Noah Ava Oliver Sophia Elijah Isabella James Mia William Charlotte Benjamin "
    "Amelia Lucas Harper Henry Evelyn Alexander Abigail Mason Emily Michael Ella Ethan Elizabeth "
    "Daniel Camila Jacob Luna Logan Sofia Jackson Avery Levi Mila Sebastian Aria Mateo Scarlett "
    "Jack Penelope Owen Layla Theodore Chloe Aiden Victoria Samuel Madison Joseph Eleanor John "
    "Grace David Nora Wyatt Riley Matthew Zoey Luke Hannah Asher Hazel Carter Lily Julian Ellie "
    "Grayson Violet Leo Lillian Jayden Zoe Gabriel Stella Isaac Aurora Lincoln Natalie Anthony "
    "Emilia Hudson Everly Dylan Leah Ezra Aubrey Thomas Willow Charles Addison Christopher Lucy "
    "Jaxon Audrey Maverick Bella Josiah Nova Isaiah Brooklyn Andrew Paisley Elias Savannah Joshua "
    "Claire Nathan Skylar Caleb Isla Ryan Genesis Adrian Naomi Miles Elena Eli Caroline Nolan "
    "Aaliyah Christian Anna Aaron Maya Cameron Valentina Ezekiel Ruby Colton Kennedy Luca Ivy "
    "Landon Ariana Hunter Aaliyah Jonathan Cora Santiago Madelyn Axel Alice Easton Kinsley Cooper "
    "Hailey Jeremiah Gabriella Angel Allison Roman Gianna Connor Serenity Jameson Samantha Robert "
    "Sarah Greyson Autumn Jordan Quinn Ian Eva Carson Piper Jaxson Sophie Leonardo Sadie Nicholas "
    "Delilah Dominic Josephine Austin Nevaeh Everett Adeline Brooks Arya Xavier Emery Kai Lydia "
    "Jose Clara Parker Vivian Adam Madeline Jace Peyton Wesley Julia Kayden Rylee Silas Brielle"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers "
    "Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo "
    "Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman "
    "Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander "
    "Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis "
    "Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald "
    "Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford "
    "Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks "
    "Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice"
).split()
DOMAINS = (
    "gmail.com gmail.com gmail.com gmail.com yahoo.com yahoo.com outlook.com outlook.com hotmail.com "
    "icloud.com aol.com proton.me gmx.de web.de orange.fr free.fr libero.it example.org acme.io "
    "contoso.com fastmail.com zoho.com yandex.ru mail.com"
).split()
CITIES = (
    "London Paris Berlin Madrid Rome Lisbon Dublin Amsterdam Brussels Vienna Warsaw Prague Oslo "
    "Stockholm Helsinki Copenhagen Zurich Munich Lyon Milan Barcelona Porto Seattle Austin Boston "
    "Chicago Denver Toronto Montreal Sydney"
).split()
COUNTRIES = "GB FR DE ES IT PT IE NL BE AT PL CZ NO SE FI DK CH US CA AU".split()
COMPANIES = (
    "Acme Globex Initech Umbrella Hooli Stark Wayne Wonka Tyrell Cyberdyne Soylent Aperture "
    "Vandelay Prestige Gringotts Oscorp"
).split()
PLANS = "free free free starter starter pro business enterprise".split()
SOURCES = "web web web landing-page referral import api event partner".split()


# --------------------------------------------------------------------------------------------
# database plumbing (before Django is set up)


def _admin_conninfo(url: str) -> tuple[str, str]:
    """The maintenance database URL on the same server, and the bench database's name."""
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/")
    return urlunsplit(parts._replace(path="/postgres")), dbname


def export_db_url(url: str) -> str:
    """The second bench database, holding one 1,000,000-row list for the export."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_export"))


def _seed_interrupted(url: str) -> bool:
    """A seed deletes its 'seed' record first and writes it last: bench_meta without it means a
    seed died half-way (rows or indexes missing), and the database is rebuilt from scratch."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('bench_meta')").fetchone()[0] is None:
            return False
        return conn.execute("SELECT 1 FROM bench_meta WHERE key = 'seed'").fetchone() is None


def database_prepare(url: str, *, reseed: bool) -> None:
    import psycopg

    admin_url, dbname = _admin_conninfo(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if exists and not reseed and _seed_interrupted(url):
            print(f"database {dbname}: an earlier seed did not finish; starting again")
            reseed = True
        if exists and reseed:
            print(f"dropping database {dbname}")
            conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            exists = None
        if not exists:
            print(f"creating database {dbname}")
            conn.execute(f'CREATE DATABASE "{dbname}"')


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "inboxerr.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use-0123456789")
    # The benchmark times the API, not the per-user allowance that would stop its loops.
    os.environ.setdefault("API_THROTTLE_USER", "1000000/min")
    sys.path.insert(0, str(ROOT))
    import warnings

    warnings.filterwarnings("ignore", message="SECRET_KEY is not set")
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here
    import django

    django.setup()


# --------------------------------------------------------------------------------------------
# seeding


def _sql_array(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def seed_state() -> dict | None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        cur.execute("SELECT value FROM bench_meta WHERE key = 'seed'")
        row = cur.fetchone()
    if not row:
        return None
    value = row[0]
    return json.loads(value) if isinstance(value, str) else value


def seed(layout: str) -> dict:
    """1,000,000 subscribers of one owner over the layout's lists, set-based, in one INSERT ... SELECT."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from inboxerr.accounts import roles_ensure
    from subscribers.models import Subscriber, SubscriberList

    started = time.perf_counter()
    User = get_user_model()
    group = roles_ensure()
    owner, _ = User.objects.get_or_create(username=OWNER, defaults={"is_staff": True, "email": "owner@bench.test"})
    owner.groups.add(group)
    # A second owner with a small list, so the ownership filter has something to exclude.
    outsider, _ = User.objects.get_or_create(username="bench_outsider", defaults={"is_staff": True})
    outsider.groups.add(group)

    table = Subscriber._meta.db_table
    with connection.cursor() as cur:
        # From here until the end the database is half-seeded: without this record the next
        # run starts again from an empty database (see _seed_interrupted).
        cur.execute("DELETE FROM bench_meta")
        cur.execute(f"TRUNCATE {table} CASCADE")
    SubscriberList.objects.filter(owner__in=[owner, outsider]).delete()
    lists = {}
    for name, key_field, _share in LAYOUTS[layout]:
        lists[name] = SubscriberList.objects.create(
            owner=owner, name=name, key_field=key_field, description=f"bench list {name}"
        )
    other = SubscriberList.objects.create(owner=outsider, name=BIG_LIST, description="outsider's list")

    # list of row n (1..TOTAL) by n % 1000, interleaved in time like real sign-ups.
    bounds, lo = [], 0
    for name, _key, share in LAYOUTS[layout]:
        bounds.append((lo, lo + share, lists[name].pk, lists[name].key_field))
        lo += share
    assert lo == 1000
    list_case = "CASE " + " ".join(f"WHEN n %% 1000 < {hi} THEN {pk}" for _lo, hi, pk, _k in bounds) + " END"
    phone_lists = [pk for _lo, _hi, pk, key in bounds if key == "phone"]

    with connection.cursor() as cur:
        # Secondary indexes are dropped for the load and rebuilt from their own definitions:
        # exactly the ones the app's migrations have just created (constraint-backed ones stay).
        cur.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename = %s AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            [table],
        )
        secondary = dict(cur.fetchall())
        for name in secondary:
            cur.execute(f'DROP INDEX IF EXISTS "{name}"')

    def list_pk(name: str) -> int:
        return lists[name].pk if name in lists else 0  # 0: no such list in this layout

    first, last, domains = _sql_array(FIRST), _sql_array(LAST), _sql_array(DOMAINS)
    cities, countries, companies = _sql_array(CITIES), _sql_array(COUNTRIES), _sql_array(COMPANIES)
    plans, sources = _sql_array(PLANS), _sql_array(SOURCES)
    nf, nl, nd = len(FIRST), len(LAST), len(DOMAINS)
    sql = f"""
    INSERT INTO {table} (list_id, key, email, phone, name, status, standard_fields, custom_fields,
                         import_job_id, created_at, updated_at)
    SELECT list_id,
           CASE WHEN list_id = ANY(%(phone_lists)s) THEN phone ELSE email END,
           email, coalesce(phone, ''), fname || ' ' || lname, status, std, cst, NULL, created,
           created + CASE WHEN h3 %% 3 = 0 THEN (h3 %% 500) * interval '1 hour' ELSE interval '0' END
    FROM (
      SELECT *,
             lower(CASE h1 %% 4
                     WHEN 0 THEN fname || '.' || lname
                     WHEN 1 THEN left(fname, 1) || lname
                     WHEN 2 THEN fname || '_' || lname
                     ELSE fname || lname END)
               || n || '@' || ({domains})[1 + h2 %% {nd}] AS email,
             CASE WHEN list_id = ANY(%(phone_lists)s) OR h2 %% 10 < 6
                  THEN '+1' || (200 + h1 %% 700) || lpad((n %% 10000000)::text, 7, '0') END AS phone,
             CASE WHEN h3 %% 100 < 85 THEN 'active' WHEN h3 %% 100 < 92 THEN 'inactive'
                  WHEN h3 %% 100 < 97 THEN 'unsubscribed' ELSE 'bounced' END AS status,
             jsonb_strip_nulls(jsonb_build_object(
               'first_name', fname, 'last_name', lname,
               'city', ({cities})[1 + h1 %% {len(CITIES)}],
               'country', ({countries})[1 + h2 %% {len(COUNTRIES)}],
               'company', CASE WHEN h3 %% 5 < 2 THEN ({companies})[1 + h1 %% {len(COMPANIES)}] END)) AS std,
             jsonb_strip_nulls(jsonb_build_object(
               'plan', ({plans})[1 + h2 %% {len(PLANS)}],
               'signup_source', ({sources})[1 + h3 %% {len(SOURCES)}],
               'score', h1 %% 101,
               'newsletter_opt_in', h2 %% 3 > 0,
               'loyalty_tier', CASE WHEN list_id = {list_pk('vip')} THEN
                                 (ARRAY['gold','silver','platinum'])[1 + h1 %% 3] END,
               'session', CASE WHEN list_id = {list_pk('webinar-2026')} THEN
                                 'S' || (1 + h2 %% 12) END)) AS cst,
             timestamptz '2026-11-25 00:00:00+00' - ({TOTAL} - n) * interval '63 seconds'
               - (h2 %% 60) * interval '1 second' AS created
      FROM (
        SELECT n, {list_case} AS list_id,
               ({first})[1 + (hashint8(n) & 2147483647) %% {nf}] AS fname,
               ({last})[1 + (hashint8(n + 7777777) & 2147483647) %% {nl}] AS lname,
               (hashint8(n + 1) & 2147483647) AS h1,
               (hashint8(n + 2) & 2147483647) AS h2,
               (hashint8(n + 3) & 2147483647) AS h3
        FROM generate_series(1, {TOTAL}) AS n
      ) base
    ) rows
    """  # rows come out in n order, and created_at grows with n: ids follow sign-up time
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        t = time.perf_counter()
        cur.execute(sql, {"phone_lists": phone_lists})
        inserted = cur.rowcount
        insert_s = time.perf_counter() - t
        print(f"  inserted {inserted:,} rows in {insert_s:.1f}s")
        # The outsider's list: a little data the owner must never see.
        cur.execute(
            f"""INSERT INTO {table} (list_id, key, email, phone, name, status, standard_fields,
                                      custom_fields, created_at, updated_at)
                SELECT %s, 'outsider' || n || '@example.net', 'outsider' || n || '@example.net', '',
                       'Olivia Outsider', 'active', '{{}}', '{{}}', now(), now()
                FROM generate_series(1, 2000) n""",
            [other.pk],
        )
        cur.execute(
            f"""UPDATE {SubscriberList._meta.db_table} l SET subscriber_count = c.n
                FROM (SELECT list_id, count(*) n FROM {table} GROUP BY list_id) c WHERE c.list_id = l.id"""
        )
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        index_s = {}
        for name, definition in secondary.items():
            t = time.perf_counter()
            cur.execute(definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
            index_s[name] = round(time.perf_counter() - t, 1)
            print(f"  index {name}: {index_s[name]}s")
        t = time.perf_counter()
        cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute(f"VACUUM (ANALYZE) {SubscriberList._meta.db_table}")
        vacuum_s = time.perf_counter() - t
        state = {
            "layout": layout,
            "lists": {name: share * TOTAL // 1000 for name, _key, share in LAYOUTS[layout]},
            "rows": inserted,
            "seeded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "insert_s": round(insert_s, 1),
            "index_s": index_s,
            "vacuum_analyze_s": round(vacuum_s, 1),
            "total_s": round(time.perf_counter() - started, 1),
        }
        cur.execute(
            "INSERT INTO bench_meta VALUES ('seed', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [json.dumps(state)],
        )
    return state


# --------------------------------------------------------------------------------------------
# schema


def drop_leftover_bench_indexes() -> list[str]:
    """Earlier versions of this script could add candidate indexes of their own (`bench_*`),
    two of which the app's migrations now create under their own names (sub_phone_pattern,
    sub_name_upper_trgm). Drop any left in the database so a run measures exactly the migrated
    schema and never a duplicate."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'subscribers_subscriber' AND indexname LIKE %s",
            ["bench\\_%"],
        )
        names = [row[0] for row in cur.fetchall()]
        for name in names:
            cur.execute(f'DROP INDEX IF EXISTS "{name}"')
    return names


def subscriber_indexes() -> list[dict]:
    """The subscriber table's indexes as the run measures them: name, definition, size, scans."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT i.indexname, i.indexdef, pg_size_pretty(pg_relation_size(s.indexrelid)), s.idx_scan
            FROM pg_indexes i JOIN pg_stat_user_indexes s ON s.indexrelname = i.indexname
            WHERE i.tablename = 'subscribers_subscriber' ORDER BY i.indexname
            """
        )
        return [{"name": n, "definition": d.split(" USING ", 1)[-1], "size": size, "scans": scans}
                for n, d, size, scans in cur.fetchall()]


def flush_stats() -> None:
    """Make this backend's pending statistics (index scans) visible to pg_stat_* views."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# measuring


class SqlTimer:
    """Django execute_wrapper: the time of every SQL statement of a request."""

    def __init__(self):
        self.calls: list[tuple[float, str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.calls.append((time.perf_counter() - t, sql, params))


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def api_client():
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    hosts = [h for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith((".", "["))]
    client = APIClient(SERVER_NAME="localhost" if "localhost" in hosts or not hosts else hosts[0])
    user = get_user_model().objects.get(username=OWNER)
    assert not user.is_superuser
    client.force_authenticate(user)
    return client


def sample_terms(n: int, rng: random.Random) -> dict[str, list]:
    from django.db import connection

    from subscribers.models import Subscriber, SubscriberList

    owner_lists = list(SubscriberList.objects.filter(owner__username=OWNER).values_list("pk", flat=True))
    table = Subscriber._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"SELECT min(id), max(id) FROM {table} WHERE list_id = ANY(%s)", [owner_lists])
        lo, hi = cur.fetchone()
        ids = rng.sample(range(lo, hi + 1), n * 3)
        cur.execute(f"SELECT email, phone FROM {table} WHERE id = ANY(%s) AND list_id = ANY(%s)", [ids, owner_lists])
        sampled = cur.fetchall()
    rng.shuffle(sampled)  # same draws as when only emails were sampled: the same terms as before
    emails = [email for email, _phone in sampled[:n]]
    phones = [phone for _email, phone in sampled if phone][:n]  # '+14155550123' (E.164, as stored)
    prefixes = []
    for email in emails:
        local = email.split("@")[0]
        digits_at = next(i for i, ch in enumerate(local) if ch.isdigit())
        prefixes.append(local[: digits_at + 2])  # 'olivia.smith12': a few hundred rows at most
    typed = [e[: e.index("@") + 3] for e in emails]  # 'olivia.smith123456@gm': an address being typed
    broad_prefixes = [e[:3] for e in emails]  # 'oli': ~1% of rows each
    surnames = [s.lower() for s in LAST]
    name_fragments = [s[:5] if len(s) > 5 else s for s in rng.sample(surnames, min(n, len(surnames)))]
    broad = ["son", "ann", "mar", "ell", "er", "an", "li", "ar", "gmail", "com"]
    return {
        "phone": phones,
        "phone_prefix": [p[:6] for p in phones],  # '+12120': one area code, ~0.09% of rows each
        "phone_partial": [p[-7:] for p in phones],  # '0123456': a number without its area code
        "exact": emails,
        "prefix": prefixes,
        "typed": typed,
        "broad_prefix": broad_prefixes,
        "name": name_fragments,
        "broad": broad,
        "status": ["bounced", "unsubscribed", "inactive", "active"],
    }


def scenarios(terms: dict[str, list]) -> list[tuple[str, str, list[tuple[str, dict]], bool]]:
    """(key, description, [(path, params)...], is_target) per scenario."""

    def each(kind, make):
        return [make(t) for t in terms[kind]]

    return [
        ("search_exact", "search: exact email (smart)",
         each("exact", lambda t: (f"{API}/search", {"search": t})), True),
        ("search_phone", "search: a phone number as stored, '+14155550123' (smart -> phone)",
         each("phone", lambda t: (f"{API}/search", {"search": t})), True),
        ("search_prefix", "search: email prefix, e.g. 'olivia.smith12' (search_mode=prefix)",
         each("prefix", lambda t: (f"{API}/search", {"search": t, "search_mode": "prefix"})), True),
        ("search_prefix_smart", "search: 'olivia.smith123456@gm' (smart -> prefix)",
         each("typed", lambda t: (f"{API}/search", {"search": t})), True),
        ("search_prefix_broad", "search: 3-letter email prefix, e.g. 'oli' (search_mode=prefix)",
         each("broad_prefix", lambda t: (f"{API}/search", {"search": t, "search_mode": "prefix"})), True),
        ("search_prefix_phone", "search: phone prefix '+12120' (search_mode=prefix)",
         each("phone_prefix", lambda t: (f"{API}/search", {"search": t, "search_mode": "prefix"})), True),
        ("search_text_name", "search: free text, a surname fragment (smart -> contains)",
         each("name", lambda t: (f"{API}/search", {"search": t})), True),
        ("search_text_broad", "search: free text, broad ('son', 'an', 'gmail'...)",
         each("broad", lambda t: (f"{API}/search", {"search": t})), True),
        ("search_phone_partial", "search: 7 digits of a number, '0123456' (smart -> phone, contains), for reference",
         each("phone_partial", lambda t: (f"{API}/search", {"search": t})), False),
        ("search_status", "search: status filter, no term",
         each("status", lambda t: (f"{API}/search", {"status": t})), True),
        ("search_status_list", "search: status + list_name=newsletter",
         each("status", lambda t: (f"{API}/search", {"status": t, "list_name": BIG_LIST})), True),
        ("search_all", "search: no filter, page 1",
         [(f"{API}/search", {})], True),
        ("list_page1", f"list/{BIG_LIST} page 1 (limit 50)",
         [(f"{API}/list/{BIG_LIST}", {"page": 1, "limit": 50})], True),
        ("list_page500", f"list/{BIG_LIST} page 500 (limit 50)",
         [(f"{API}/list/{BIG_LIST}", {"page": 500, "limit": 50})], True),
        ("list_page5000", f"list/{BIG_LIST} page 5000 (limit 50): OFFSET cost, for reference",
         [(f"{API}/list/{BIG_LIST}", {"page": 5000, "limit": 50})], False),
        ("list_small_page100", "list/vip (10k) page 100 (limit 50), for reference",
         [(f"{API}/list/vip", {"page": 100, "limit": 50})], False),
        ("list_search", f"list/{BIG_LIST}?search=<surname fragment> (email, phone, name, JSON values)",
         each("name", lambda t: (f"{API}/list/{BIG_LIST}", {"search": t})), False),
        ("list_search_field", f"list/{BIG_LIST}?search=<city> (matches JSON values only), for reference",
         [(f"{API}/list/{BIG_LIST}", {"search": c}) for c in ("Lisbon", "Reykjavik", "Porto", "Zurich")], False),
        ("lists_simple", "lists?simple=true", [(f"{API}/lists", {"simple": "true"})], True),
        ("lists_full", "lists", [(f"{API}/lists", {})], True),
    ]


def run_scenario(client, requests: list[tuple[str, dict]], n: int, budget_s: float):
    from django.db import connection

    # Two untimed warm-up calls (first use of a plan, cold cache for this access path).
    for path, params in requests[:2]:
        response = client.get(path, params)
        assert response.status_code == 200, (path, params, response.status_code, response.content[:300])
    times, sql_worst, totals, strategies = [], {}, [], set()
    started = time.perf_counter()
    for i in range(n):
        path, params = requests[i % len(requests)]
        timer = SqlTimer()
        with connection.execute_wrapper(timer):
            t = time.perf_counter()
            response = client.get(path, params)
            elapsed = time.perf_counter() - t
        assert response.status_code == 200, (path, params, response.status_code, response.content[:300])
        times.append(elapsed * 1000)
        body = response.json()
        if isinstance(body, dict):
            pagination = body.get("pagination", {})
            totals.append(pagination.get("total"))
            strategies.add(body.get("performance", {}).get("strategy"))
        if timer.calls:
            slow = max(timer.calls, key=lambda c: c[0])
            if slow[0] * 1000 > sql_worst.get("ms", -1):
                sql_worst = {"ms": slow[0] * 1000, "sql": slow[1], "params": slow[2], "request": (path, params),
                             "sql_total_ms": sum(c[0] for c in timer.calls) * 1000, "queries": len(timer.calls)}
        if time.perf_counter() - started > budget_s and len(times) >= 5:
            break
    return times, sql_worst, totals, strategies - {None}


def explain(sql: str, params) -> str:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())


def export_child(list_name: str) -> None:
    """Runs in its own process: stream the export to nowhere, report time, size and memory."""
    django_setup(DB_URL)
    client = api_client()
    baseline_kb = _proc_status("VmRSS")
    t = time.perf_counter()
    response = client.get(f"{API}/lists/{list_name}/export")
    assert response.status_code == 200 and response.streaming, response.status_code
    ttfb = None
    size = lines = 0
    for chunk in response.streaming_content:
        if ttfb is None:
            ttfb = time.perf_counter() - t
        size += len(chunk)
        lines += chunk.count(b"\n")
    response.close()
    total = time.perf_counter() - t
    print(json.dumps({
        "seconds": total, "first_byte_s": ttfb, "bytes": size, "lines": lines,
        "rss_before_kb": baseline_kb, "vmhwm_kb": _proc_status("VmHWM"),
        "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "python_cpu_s": round(time.process_time(), 1),
    }))


def _proc_status(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def machine_info() -> dict:
    from django.db import connection

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        version = cur.fetchone()[0]
        settings = {}
        for name in ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit"):
            cur.execute(f"SHOW {name}")
            settings[name] = cur.fetchone()[0]
    import django

    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(), "cpu": cpu, "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(), "django": django.get_version(),
        "postgresql": version.split(" on ")[0], "pg_settings": settings,
    }


def prepare(layout: str, *, reseed: bool) -> dict:
    """Create the database if needed, apply the app's migrations (all of them: a run measures
    the schema as migrated today), and seed it if it does not hold this layout's rows."""
    database_prepare(DB_URL, reseed=reseed)
    django_setup(DB_URL)
    from django.core.management import call_command

    print(f"database: {DB_URL}")
    call_command("migrate", verbosity=0, interactive=False)
    dropped = drop_leftover_bench_indexes()
    if dropped:
        print(f"dropped indexes left by an earlier version of this script: {', '.join(dropped)}")
    state = seed_state()
    if not state or state.get("rows") != TOTAL or state.get("layout", "main") != layout:
        print(f"seeding {TOTAL:,} subscribers ({layout} layout) ...")
        state = seed(layout)
    else:
        print(f"already seeded ({state['seeded_at']}); --reseed to start again")
    return state


def _temp_bytes(url: str) -> tuple[int, int]:
    """PostgreSQL's temporary-file counters for one database (a WITH HOLD cursor spills there)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT temp_files, temp_bytes FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()


def measure_export(url: str, rows_expected: int) -> dict | None:
    """Stream `lists/newsletter/export` of the database at `url` in a child process."""
    print(f"export of '{BIG_LIST}' ({rows_expected:,} rows, {urlsplit(url).path.lstrip('/')}) in a child process ...")
    temp_before = _temp_bytes(url)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--export-child", BIG_LIST],
        capture_output=True, text=True, env={**os.environ, "BENCH_DATABASE_URL": url},
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        return None
    export = json.loads(proc.stdout.strip().splitlines()[-1])
    time.sleep(1)  # the child's backend reports its statistics as it exits
    temp_after = _temp_bytes(url)
    export["temp_files"] = temp_after[0] - temp_before[0]
    export["temp_bytes"] = temp_after[1] - temp_before[1]
    rows = export["rows"] = export["lines"] - 1
    ok_time = export["seconds"] < 30
    ok_rss = export["vmhwm_kb"] / 1024 < 150
    print(f"  {rows:,} rows, {export['bytes'] / 1e6:.0f} MB in {export['seconds']:.1f}s "
          f"({rows / export['seconds']:,.0f} rows/s; first byte after {export['first_byte_s']:.2f}s) "
          f"{'ok' if ok_time else 'MISS'} (<30 s)")
    print(f"  peak RSS: {export['vmhwm_kb'] / 1024:.0f} MB (process after Django setup: "
          f"{export['rss_before_kb'] / 1024:.0f} MB) {'ok' if ok_rss else 'MISS'} (<150 MB)")
    print(f"  CPU in the Python process: {export['python_cpu_s']}s of {export['seconds']:.1f}s; "
          f"PostgreSQL temporary files: {export['temp_files']} ({export['temp_bytes'] / 1e6:.0f} MB)")
    if rows != rows_expected:
        print(f"  expected {rows_expected:,} rows")
    return export


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reseed", action="store_true", help="drop the bench databases and seed again")
    parser.add_argument("-n", "--requests", type=int, default=30, help="timed requests per scenario (default 30)")
    parser.add_argument("--budget", type=float, default=45.0, help="max seconds per scenario (default 45)")
    parser.add_argument("--only", help="comma-separated scenario keys to run ('export' for the export)")
    parser.add_argument("--no-export", action="store_true", help="skip the export measurement")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest SQL of each scenario")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--export-child", metavar="LIST", help=argparse.SUPPRESS)
    parser.add_argument("--prepare-only", choices=tuple(LAYOUTS), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.export_child:
        export_child(args.export_child)
        return 0
    if args.prepare_only:
        print("seed: " + json.dumps(prepare(args.prepare_only, reseed=args.reseed)))
        return 0

    state = prepare("main", reseed=args.reseed)
    from django.db import connection

    print(f"seed: {json.dumps(state)}")
    with connection.cursor() as cur:
        cur.execute("ANALYZE subscribers_subscriber")
        cur.execute("ANALYZE subscribers_subscriberlist")
        cur.execute("SELECT pg_size_pretty(pg_total_relation_size('subscribers_subscriber'))")
        table_size = cur.fetchone()[0]

    info = machine_info()
    print(f"date: {info['date']}")
    print(f"machine: {info['nproc']} CPU ({info['cpu']}), {info['mem_gb']} GB RAM; Python {info['python']}, "
          f"Django {info['django']}; {info['postgresql']} {info['pg_settings']}")
    print(f"subscribers table with indexes: {table_size}")

    rng = random.Random(20261125)
    terms = sample_terms(args.requests, rng)
    client = api_client()
    only = set(args.only.split(",")) if args.only else None
    results = []
    flush_stats()
    scans_before = {ix["name"]: ix["scans"] for ix in subscriber_indexes()}
    print()
    print(f"{'scenario':<22} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  {'slowest SQL ms':>14}  target<150")
    for key, label, requests, is_target in scenarios(terms):
        if only and key not in only:
            continue
        times, worst, totals, strategies = run_scenario(client, requests, args.requests, args.budget)
        row = {
            "key": key, "label": label, "n": len(times), "p50": statistics.median(times),
            "p95": pct(times, 95), "max": max(times), "target": is_target,
            "worst_sql_ms": worst.get("ms"), "strategies": sorted(strategies),
            "totals": sorted({t for t in totals if t is not None})[:3] + (["..."] if len(set(totals)) > 3 else []),
        }
        verdict = ("ok" if row["p95"] < 150 else "MISS") if is_target else "(info)"
        print(f"{key:<22} {row['n']:>3} {row['p50']:>8.1f} {row['p95']:>8.1f} {row['max']:>8.1f}  "
              f"{(worst.get('ms') or 0):>14.1f}  {verdict}")
        if args.explain and worst:
            print(f"    slowest SQL of {worst['request']} ({worst['queries']} queries, {worst['sql_total_ms']:.1f} ms SQL):")
            print(f"    {worst['sql']}\n    params: {worst['params']}")
            print("    " + explain(worst["sql"], worst["params"]).replace("\n", "\n    "))
        results.append(row)

    flush_stats()
    indexes = subscriber_indexes()
    for ix in indexes:
        ix["scans_this_run"] = ix["scans"] - scans_before.get(ix["name"], 0)
    if results:
        print(f"\nsubscriber indexes: size, scans during the scenarios above{' (and their EXPLAINs)' if args.explain else ''}")
        for ix in indexes:
            print(f"  {ix['name']:<46} {ix['size']:>8} {ix['scans_this_run']:>6} scans  {ix['definition']}")

    exports = {}
    if not args.no_export and (not only or "export" in only):
        print()
        exports["list_900k"] = measure_export(DB_URL, TOTAL * 9 // 10)
        export_url = export_db_url(DB_URL)
        print(f"preparing the export database ({TOTAL:,} rows on one list) in a child process ...")
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--prepare-only", "export",
             *(["--reseed"] if args.reseed else [])],
            text=True, stdout=subprocess.PIPE, env={**os.environ, "BENCH_DATABASE_URL": export_url},
        )
        if proc.returncode != 0:
            print(proc.stdout[-3000:])
            return 1
        print("  " + proc.stdout.strip().replace("\n", "\n  "))
        exports["list_1m"] = measure_export(export_url, TOTAL)
        if None in exports.values():
            return 1

    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "seed": state, "table_size": table_size,
                                                "indexes": indexes, "scenarios": results, "export": exports},
                                               indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
