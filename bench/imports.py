"""Benchmark: Inboxerr's CSV import against a stand-alone loader, same file, same database, same run.

For each kind of file, the stand-alone loader (this script with --standalone: no Django,
psycopg directly; csv module read positionally, the key validated and normalised in the same
pass, COPY into a temporary staging table with a `COLLATE "C"` key, one MERGE into the
subscribers table, invalid rows written by COPY) loads it into its own list, then
`manage.py import_csv --sync` loads it into another list of the same table (same indexes). Each
runs in a child process, so its peak RSS is its own (`ru_maxrss`). The kinds of file:

  (a) realistic: email, first/last name, phone `+1-NNN-NNN-NNNN` (some unassigned area codes),
      city, plan, date, company, value; 5% repeated addresses, 1% malformed, accented local parts
  (b) half the rows with a bad key
  (c) (a) again into the same lists, unchanged
  (d) (a) with 10% of rows changed, into the same lists

Then (a) end to end through the API: a streamed multipart upload to `runserver` and one real
`qcluster` worker, timed from the first byte to the job's final status.

    .venv/bin/python bench/imports.py [--rows 200000 | --million] [--keep-db]

Uses its own database (inboxerr_bench_imports) and bench/data/ for the generated files.
This is a script, not a test: figures go to bench/RESULTS.md by hand.
"""

import argparse
import csv
import http.client
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from procinfo import free_port, group_pids, rss_kb  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
DB_NAME = "inboxerr_bench_imports"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
PY = sys.executable
STORED_ERRORS = 10_000  # the stand-alone loader keeps as many error rows as Inboxerr's default

DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.org", "mail.de", "proton.me", "icloud.com", "fastmail.com"]
FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo", "Zoë", "José",
         "Renée", "Chloé"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Müller", "O'Brien", "Lee"]
PLANS = ["free", "pro", "team", "enterprise"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises", "Hooli", ""]
# Area codes in service, and a few that are not (phonenumbers calls those numbers invalid).
AREAS = ["201", "212", "305", "312", "415", "503", "617", "646", "702", "713", "818", "917"]
UNASSIGNED = ["299", "399", "499", "599"]


def generate(path: Path, rows: int, *, invalid_share: float = 0.01, changed_share: float = 0.0, seed: int = 7) -> dict:
    """9 columns. About 5% of rows repeat an earlier address and `invalid_share` have a
    malformed address; a third of the addresses keep the accents of the name in their local
    part (`renée.lee6@outlook.com`); 70% have a phone, 4% of those in an unassigned area code.
    With `changed_share`, that share of rows gets a different plan and city (a re-import)."""
    rng = random.Random(seed)
    change_rng = random.Random(seed + 1)
    counts = {"rows": 0, "duplicates": 0, "invalid": 0}
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("email,first_name,last_name,phone,city,plan,signup_date,company,value\n")
        unique = 0
        for _ in range(rows):
            roll = rng.random()
            if roll < invalid_share:
                bad = rng.choice(("{}.example.com", "{}@", "@{}.com", "{}@@mail.de", "{} at gmail.com"))
                handle.write(f"{bad.format('user' + str(rng.randrange(10**9)))},X,Y,,Nowhere,free,2024-01-01,,0\n")
                counts["invalid"] += 1
                counts["rows"] += 1
                continue
            if roll < invalid_share + 0.05 and unique:
                index = rng.randrange(unique)
                counts["duplicates"] += 1
            else:
                index = unique
                unique += 1
            r = random.Random(index)
            first, last = r.choice(FIRST), r.choice(LAST)
            local = f"{first}.{last}".lower().replace("'", "")
            if index % 3:
                local = local.translate(str.maketrans("éëü", "eeu"))
            email = f"{local}{index}@{r.choice(DOMAINS)}"
            phone = ""
            if r.random() < 0.7:
                area = r.choice(UNASSIGNED) if r.random() < 0.04 else r.choice(AREAS)
                phone = f"+1-{area}-{r.randrange(200, 1000)}-{r.randrange(10000):04d}"
            plan, city = r.choice(PLANS), f"City{r.randrange(500)}"
            if changed_share and change_rng.random() < changed_share:
                plan, city = "changed", f"Moved{r.randrange(500)}"
            company = r.choice(COMPANIES)
            handle.write(f"{email},{first},{last},{phone},{city},{plan},2024-0{1 + index % 9}-1{index % 9},"
                         f"{company},{r.randrange(100000) / 100:.2f}\n")
            counts["rows"] += 1
    counts["unique"] = unique
    return counts


# --- the stand-alone loader (runs in its own process: python bench/imports.py --standalone) ---

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+").fullmatch
_PHONE = re.compile(r"\+1-([2-9]\d\d)-(\d{3})-(\d{4})").fullmatch


def standalone(path: Path, list_id: int) -> dict:
    """COPY every row into one staging table (a reason set on the invalid ones), then keep the
    first row of each key and MERGE it into the list, rewriting only rows whose values change;
    errors go to their own table in one INSERT ... SELECT, capped as Inboxerr caps them."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(DB_URL) as conn, conn.cursor() as cur:
        cur.execute(
            'CREATE TEMP TABLE stage (n int, key text COLLATE "C", phone text, first text, last text, city text, '
            "plan text, signup text, company text, value text, reason text)"
        )
        cur.execute("CREATE UNLOGGED TABLE IF NOT EXISTS standalone_errors (list_id int, n int, reason text, cells jsonb)")
        rows = 0
        with open(path, newline="", encoding="utf-8") as handle, cur.copy("COPY stage FROM STDIN") as copy:
            reader = csv.reader(handle)
            next(reader)
            write = copy.write_row
            for n, cells in enumerate(reader, start=2):
                rows += 1
                if len(cells) != 9:
                    write((n, None, None, None, None, None, None, None, None, "|".join(cells)[:1000], "wrong number of fields"))
                    continue
                email, first, last, phone, city, plan, signup, company, value = cells
                key = email.strip().lower()
                if not _EMAIL(key):
                    write((n, key, phone, first, last, city, plan, signup, company, value, "invalid email"))
                    continue
                shape = _PHONE(phone)
                write((n, key, f"+1{shape[1]}{shape[2]}{shape[3]}" if shape else "", first.strip(), last.strip(),
                       city.strip(), plan.strip(), signup.strip(), company.strip(), value.strip(), None))
        parsed = time.perf_counter()
        cur.execute(
            f"""INSERT INTO standalone_errors
                SELECT %(list)s, n, reason, jsonb_build_object('email', key, 'phone', phone, 'first_name', first,
                    'last_name', last, 'city', city, 'plan', plan, 'signup_date', signup, 'company', company, 'value', value)
                FROM stage WHERE reason IS NOT NULL ORDER BY n LIMIT {STORED_ERRORS}""",
            {"list": list_id},
        )
        cur.execute("SELECT count(*) FROM stage WHERE reason IS NOT NULL")
        invalid = cur.fetchone()[0]
        cur.execute(
            """
            MERGE INTO subscribers_subscriber s
            USING (
                SELECT DISTINCT ON (key) key COLLATE "default" AS key, phone, concat_ws(' ', NULLIF(first, ''), NULLIF(last, '')) AS name,
                    jsonb_strip_nulls(jsonb_build_object('first_name', NULLIF(first, ''), 'last_name', NULLIF(last, ''),
                                                         'company', NULLIF(company, ''))) AS std,
                    jsonb_strip_nulls(jsonb_build_object('city', NULLIF(city, ''), 'plan', NULLIF(plan, ''),
                                                         'signup_date', NULLIF(signup, ''), 'value', NULLIF(value, ''))) AS cst
                FROM stage WHERE reason IS NULL ORDER BY key, n
            ) d
            ON s.list_id = %(list)s AND s.key = d.key
            WHEN MATCHED AND (s.phone IS DISTINCT FROM CASE WHEN d.phone <> '' THEN d.phone ELSE s.phone END
                              OR s.name IS DISTINCT FROM CASE WHEN d.name <> '' THEN d.name ELSE s.name END
                              OR s.standard_fields IS DISTINCT FROM s.standard_fields || d.std
                              OR s.custom_fields IS DISTINCT FROM s.custom_fields || d.cst) THEN
                UPDATE SET phone = CASE WHEN d.phone <> '' THEN d.phone ELSE s.phone END,
                           name = CASE WHEN d.name <> '' THEN d.name ELSE s.name END,
                           standard_fields = s.standard_fields || d.std, custom_fields = s.custom_fields || d.cst,
                           updated_at = now()
            WHEN NOT MATCHED THEN
                INSERT (list_id, key, email, phone, name, status, standard_fields, custom_fields, created_at, updated_at)
                VALUES (%(list)s, d.key, d.key, d.phone, d.name, 'active', d.std, d.cst, now(), now())
            """,
            {"list": list_id},
        )
        written = cur.rowcount
        cur.execute(
            "UPDATE subscribers_subscriberlist SET subscriber_count = (SELECT count(*) FROM subscribers_subscriber "
            "WHERE list_id = %(list)s) WHERE id = %(list)s",
            {"list": list_id},
        )
        conn.commit()
    return {"rows": rows, "invalid": invalid, "written": written, "parse_copy_s": round(parsed - started, 2),
            "seconds": round(time.perf_counter() - started, 2)}


# --- measuring ---

def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def env() -> dict:
    e = {**os.environ, "DATABASE_URL": DB_URL, "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
         "IMPORT_DIR": str(DATA / "uploads"), "Q_WORKERS": "1", "PYTHONUNBUFFERED": "1", "DEBUG": "false"}
    e.pop("REDIS_URL", None)
    return e


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB, the child's own ru_maxrss) and stdout of a child process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{err.read()[-3000:]}")
        return elapsed, usage.ru_maxrss / 1024, out.read()


def upload(port: int, token: str, path: Path, list_name: str, force: bool, web_pid: int) -> tuple[dict, float, int]:
    """Stream a multipart upload from disk; sample the web process's RSS while it runs."""
    boundary = uuid.uuid4().hex
    fields = {"list_name": list_name, "force": "true" if force else "false"}
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest("POST", "/api/v1/imports/csv")
    conn.putheader("Authorization", f"Token {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    conn.endheaders()
    peak = rss_kb(web_pid)
    started = time.perf_counter()
    conn.send(head)
    with open(path, "rb") as handle:
        sent = 0
        while block := handle.read(256 * 1024):
            conn.send(block)
            sent += len(block)
            if sent % (8 * 1024 * 1024) < 256 * 1024:
                peak = max(peak, rss_kb(web_pid))
    conn.send(tail)
    response = conn.getresponse()
    body = json.loads(response.read())
    elapsed = time.perf_counter() - started
    peak = max(peak, rss_kb(web_pid))
    if response.status != 202:
        raise SystemExit(f"upload failed: {response.status} {body}")
    return body, elapsed, peak


def api_get(port: int, token: str, url: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", url, headers={"Authorization": f"Token {token}"})
    return json.loads(conn.getresponse().read())


def follow(port: int, token: str, job_id: str, worker_pgid: int) -> tuple[dict, dict[int, int]]:
    peaks: dict[int, int] = {}
    while True:
        for pid in group_pids(worker_pgid):
            peaks[pid] = max(peaks.get(pid, 0), rss_kb(pid))
        job = api_get(port, token, f"/api/v1/imports/{job_id}")
        if job["status"] not in ("pending", "processing"):
            for pid in group_pids(worker_pgid):
                peaks[pid] = max(peaks.get(pid, 0), rss_kb(pid, "VmHWM"))
            return job, peaks
        time.sleep(0.25)


def side_by_side(label: str, path: Path, suffix: str, force: bool, standalone_list: int) -> dict:
    """The stand-alone loader, then Inboxerr's `import_csv --sync`, on the same file."""
    s_wall, s_rss, s_out = timed([PY, __file__, "--standalone", str(path), "--list-id", str(standalone_list)])
    loader = json.loads(s_out)
    cmd = [PY, "manage.py", "import_csv", str(path), "--list", f"inboxerr-{suffix}", "--owner", "bench", "--sync", "--json"]
    i_wall, i_rss, i_out = timed(cmd + (["--force"] if force else []))
    job = json.loads(i_out.strip().splitlines()[-1])
    figures = {
        "work": label, "rows": loader["rows"],
        "standalone_s": round(s_wall, 2), "standalone_rss_mb": round(s_rss, 1),
        "inboxerr_s": round(i_wall, 2), "inboxerr_rss_mb": round(i_rss, 1),
        "ratio": round(i_wall / s_wall, 2),
        "inboxerr_us_per_row": round(1e6 * i_wall / max(job["processed_rows"], 1), 1),
        "standalone": loader,
        "inboxerr": {k: job[k] for k in ("status", "processed_rows", "created", "updated", "unchanged", "duplicates",
                                         "invalid", "warnings")} | {"run_s": job["stats"].get("last_run_seconds")},
    }
    print(json.dumps(figures), flush=True)
    return figures


def end_to_end(port: int, token: str, path: Path, web_pid: int, worker_pgid: int) -> dict:
    web_before = rss_kb(web_pid)
    started = time.perf_counter()
    accepted, upload_s, web_peak = upload(port, token, path, "e2e", False, web_pid)
    job, peaks = follow(port, token, accepted["import_id"], worker_pgid)
    wall = time.perf_counter() - started
    figures = {
        "work": "(a) upload + qcluster worker, empty list", "upload_s": round(upload_s, 2), "wall_s": round(wall, 2),
        "status": job["status"], "processed": job["processed_rows"], "created": job["created"],
        "invalid": job["invalid"], "warnings": job["warnings"],
        "web_rss_before_mb": round(web_before / 1024, 1), "web_rss_peak_mb": round(web_peak / 1024, 1),
        "worker_peak_rss_mb": round(max(peaks.values(), default=0) / 1024, 1),
    }
    print(json.dumps(figures), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--million", action="store_true", help="1,000,000 rows (same as --rows 1000000).")
    parser.add_argument("--keep-db", action="store_true", help="Do not drop the database at the start.")
    parser.add_argument("--no-e2e", action="store_true", help="Skip the upload + qcluster run.")
    parser.add_argument("--standalone", type=Path, help=argparse.SUPPRESS)  # the child process's mode
    parser.add_argument("--list-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.standalone:
        print(json.dumps(standalone(args.standalone, args.list_id)))
        return
    rows = 1_000_000 if args.million else args.rows

    DATA.mkdir(parents=True, exist_ok=True)
    files = {
        "a": (DATA / f"real-{rows}.csv", {}),
        "b": (DATA / f"real-{rows}-half-invalid.csv", {"invalid_share": 0.5, "seed": 11}),
        "d": (DATA / f"real-{rows}-changed.csv", {"changed_share": 0.10}),
    }
    for path, options in files.values():
        if not path.exists():
            print("generating", path.name, generate(path, rows, **options), flush=True)

    print(f"date {time.strftime('%Y-%m-%d %H:%M')}; {platform.node()}; {os.cpu_count()} cores; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; Python {platform.python_version()}", flush=True)
    if not args.keep_db:
        run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}"])
        run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {DB_NAME}"])
    print(run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"]).stdout.strip(), "PostgreSQL")
    run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env())
    run([PY, "manage.py", "bootstrap", "--username", "bench"], cwd=ROOT, env=env())
    token = run([PY, "manage.py", "create_api_token", "bench"], cwd=ROOT, env=env()).stdout.strip()
    made = run([PY, "manage.py", "shell", "-c",
                "from django.contrib.auth import get_user_model; from subscribers.models import SubscriberList\n"
                "owner = get_user_model().objects.get(username='bench')\n"
                "print(*[SubscriberList.objects.get_or_create(owner=owner, name=f'standalone-{s}')[0].pk for s in 'ab'])"],
               cwd=ROOT, env=env()).stdout.strip().splitlines()[-1].split()
    lists = dict(zip("ab", map(int, made)))

    results = [
        side_by_side("(a) realistic file, empty list", files["a"][0], "a", False, lists["a"]),
        side_by_side("(b) half the rows invalid, empty list", files["b"][0], "b", False, lists["b"]),
        side_by_side("(c) (a) again, unchanged", files["a"][0], "a", True, lists["a"]),
        side_by_side("(d) (a) with 10% of rows changed", files["d"][0], "a", True, lists["a"]),
    ]
    if not args.no_e2e:
        port = free_port()
        web = subprocess.Popen([PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT, env=env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        worker = subprocess.Popen([PY, "manage.py", "qcluster"], cwd=ROOT, env=env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for _ in range(100):
                try:
                    api_get(port, token, "/api/v1/imports/")
                    break
                except OSError:
                    time.sleep(0.2)
            e2e = end_to_end(port, token, files["a"][0], web.pid, worker.pid)
            e2e["ratio"] = round(e2e["wall_s"] / results[0]["standalone_s"], 2)
            results.append(e2e)
        finally:
            for proc in (web, worker):
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=60)

    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| work | stand-alone | Inboxerr | ratio | Inboxerr us/row | RSS stand-alone / Inboxerr |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results[:4]:
        print(f"| {r['work']} | {r['standalone_s']} s | {r['inboxerr_s']} s | {r['ratio']}x | {r['inboxerr_us_per_row']} "
              f"| {r['standalone_rss_mb']} / {r['inboxerr_rss_mb']} MB |")
    if len(results) > 4:
        r = results[4]
        print(f"| {r['work']} | {results[0]['standalone_s']} s (a) | {r['wall_s']} s | {r['ratio']}x | | worker {r['worker_peak_rss_mb']} MB |")
    out = ROOT / "bench" / "results-imports.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("written", out)


if __name__ == "__main__":
    main()
