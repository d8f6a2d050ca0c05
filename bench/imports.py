"""Benchmark: a 1,000,000-row CSV imported through the real stack on PostgreSQL.

A web server (`manage.py runserver`) receives the upload as a streamed multipart POST to
/api/v1/imports/csv; a real `qcluster` worker runs the job. Prints the upload time, the
end-to-end wall time and rows/s, the peak RSS of the web process during the upload and of the
worker during the import; then the same for a re-import where 10% of the rows changed.

    .venv/bin/python bench/imports.py [--rows 1000000] [--keep-db]

Uses its own database (inboxerr_bench_imports) and bench/data/ for the generated files.
This is a script, not a test: figures go to bench/RESULTS.md by hand.
"""

import argparse
import http.client
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
import unicodedata
import uuid
from pathlib import Path
from procinfo import free_port, group_pids, rss_kb  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
DB_NAME = "inboxerr_bench_imports"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
PY = sys.executable

DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.org", "mail.de", "proton.me", "icloud.com", "fastmail.com"]
FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo", "Zoë", "José"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Müller", "O'Brien"]
PLANS = ["free", "pro", "team", "enterprise"]


def generate(path: Path, rows: int, changed_share: float = 0.0, seed: int = 7) -> dict:
    """8 columns; about 5% of rows repeat an earlier address, 1% are invalid. With
    `changed_share`, that share of rows gets a different plan and city (a re-import)."""
    rng = random.Random(seed)
    change_rng = random.Random(seed + 1)
    counts = {"rows": 0, "duplicates": 0, "invalid": 0}
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("email,first_name,last_name,phone,city,plan,signup_date,score\n")
        unique = 0
        for _ in range(rows):
            roll = rng.random()
            if roll < 0.01:
                handle.write(f"not-an-email-{rng.randrange(10**9)},X,Y,,Nowhere,free,2024-01-01,0\n")
                counts["invalid"] += 1
            else:
                if roll < 0.06 and unique:
                    index = rng.randrange(unique)
                    counts["duplicates"] += 1
                else:
                    index = unique
                    unique += 1
                r = random.Random(index)
                first, last = r.choice(FIRST), r.choice(LAST)
                local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
                email = f"{local.lower().replace(chr(39), '')}{index}@{r.choice(DOMAINS)}"
                phone = f"+1415{r.randrange(2000000, 9999999)}" if r.random() < 0.6 else ""
                plan, city = r.choice(PLANS), f"City{r.randrange(500)}"
                if changed_share and change_rng.random() < changed_share:
                    plan, city = "changed", f"Moved{r.randrange(500)}"
                handle.write(f"{email},{first},{last},{phone},{city},{plan},2024-0{1 + index % 9}-1{index % 9},{index % 97}\n")
            counts["rows"] += 1
    counts["unique"] = unique
    return counts


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def env() -> dict:
    e = {**os.environ, "DATABASE_URL": DB_URL, "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789", "IMPORT_DIR": str(DATA / "uploads"),
         "Q_WORKERS": "1", "PYTHONUNBUFFERED": "1", "DEBUG": "false"}
    e.pop("REDIS_URL", None)
    return e


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


def measure(label: str, port: int, token: str, path: Path, force: bool, web_pid: int, worker_pgid: int) -> dict:
    web_before = rss_kb(web_pid)
    started = time.perf_counter()
    accepted, upload_s, web_peak = upload(port, token, path, "bench", force, web_pid)
    job, peaks = follow(port, token, accepted["import_id"], worker_pgid)
    wall = time.perf_counter() - started
    figures = {
        "label": label,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "upload_s": round(upload_s, 2),
        "wall_s": round(wall, 2),
        "rows_per_s_end_to_end": round(job["processed_rows"] / wall),
        "worker_rows_per_s": job["rows_per_second"],
        "status": job["status"],
        "processed": job["processed_rows"], "created": job["created"], "updated": job["updated"],
        "unchanged": job["unchanged"], "duplicates": job["duplicates"], "invalid": job["invalid"],
        "web_rss_before_mb": round(web_before / 1024, 1),
        "web_rss_peak_during_upload_mb": round(web_peak / 1024, 1),
        "worker_peak_rss_mb": round(max(peaks.values(), default=0) / 1024, 1),
    }
    print(json.dumps(figures, indent=2))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true", help="Do not drop the database at the start.")
    args = parser.parse_args()

    DATA.mkdir(parents=True, exist_ok=True)
    first, second = DATA / f"import-{args.rows}.csv", DATA / f"import-{args.rows}-changed.csv"
    if not first.exists():
        print("generating", first, generate(first, args.rows))
    if not second.exists():
        print("generating", second, generate(second, args.rows, changed_share=0.10))

    print(f"date {time.strftime('%Y-%m-%d %H:%M')}; {platform.node()}; {os.cpu_count()} cores; "
          f"{platform.processor() or platform.machine()}; Python {platform.python_version()}")
    if not args.keep_db:
        run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}"])
        run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {DB_NAME}"])
    print(run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"]).stdout.strip(), "PostgreSQL")
    run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env())
    run([PY, "manage.py", "bootstrap", "--username", "bench"], cwd=ROOT, env=env())
    token = run([PY, "manage.py", "create_api_token", "bench"], cwd=ROOT, env=env()).stdout.strip()

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
        results = [
            measure("first import (empty list)", port, token, first, False, web.pid, worker.pid),
            measure("re-import, same file (nothing changes)", port, token, first, True, web.pid, worker.pid),
            measure("re-import, 10% of rows changed", port, token, second, True, web.pid, worker.pid),
        ]
    finally:
        for proc in (web, worker):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.wait(timeout=60)
    out = ROOT / "bench" / "results-imports.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("written", out)


if __name__ == "__main__":
    main()
