"""Benchmark: the batch API of seed 003 on PostgreSQL, through a real web server and a real worker.

Prints:
1. ingest of a 100,000-item batch POSTed over HTTP (`POST /api/v1/batch/process`, API token) to a
   real web server (`manage.py runserver`, as bench/imports.py starts it), for three kinds of
   items: SMS content shared by every item with merge variables, SMS content pre-rendered per
   item (every item's text differs, no variables), and SMS template items with variables.
   Several runs each; per run the client's end-to-end request time, the server's
   `processing_time_ms` (the ingest service alone: validation + COPY + commit), the JSON body
   size, and the web process's RSS (sampled every 10 ms during the request, plus VmHWM); then
   the median of each kind (runs interleave the kinds), with web and PostgreSQL CPU per run;
2. the ordered publisher: a few batches (3 x 10,000 by default) stored through the API, then
   one real `qcluster` worker (Q_WORKERS=1) publishes them to the loopback SMS gateway
   (campaigns/tests/gateway.py, HttpGatewayBackend): time from the first send to the last batch
   committed, messages/s, and a check that the gateway received every item exactly once and
   in (batch_sequence, item_sequence) order, and that each batch was committed before the next
   one's first send;
3. for comparison in the same run, the unordered campaign dispatch rate to the same gateway with
   ONE worker (the ordered publisher is one stream on one worker, so this is its ceiling), run
   before and after the publish runs, plus the gateway protocol alone (http.client, no Django) as
   a reference for the machine's speed this hour. Each phase says how busy the machine was and
   how much of that was other work: this machine's speed drifts, and other work shares its cores.

    .venv/bin/python bench/batches.py [--items 100000] [--runs 3] [--publish-batches 3]
                                      [--publish-items 30000] [--kinds content,unique,template]
                                      [--publish-kinds template,content] [--no-campaign]
    .venv/bin/python bench/batches.py --profile template   # phases + cProfile of one in-process ingest

Figures are also written to bench/results-batches.json (--json FILE).

Uses its own database (inboxerr_bench_batches, dropped and created again unless --keep-db).
A script, not a test: figures go to bench/RESULTS.md by hand.
"""

import argparse
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from procinfo import free_port, group_pids, rss_kb  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "inboxerr_bench_batches"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
PY = sys.executable
GATEWAY_BACKEND = "campaigns.channels.sms.HttpGatewayBackend"
VENDORS = ["EVICORE", "Cohere", "Acme", "Globex", "Initech"]
TEMPLATE_BODY = "Hi {{ first_name }}, order {{ order_no }} ships on {{ ship_date }}. Reply STOP to opt out."
SHARED_CONTENT = "Hello {{ name }}, your code is {{ code }}."
sys.path.insert(0, str(ROOT))


# --- processes and plumbing ---------------------------------------------------------------------


def psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atqc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def env(**extra: str) -> dict:
    e = {**os.environ, "DATABASE_URL": DB_URL, "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789", "PYTHONUNBUFFERED": "1", "DEBUG": "false",
         **extra}
    e.pop("REDIS_URL", None)
    return e


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to the benchmark's database now."""
    pids = psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{DB_NAME}' AND pid <> pg_backend_pid()").split()
    return {int(pid): cpu_seconds(int(pid)) for pid in pids}


def backend_cpu_since(before: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in backend_cpu().items())


class Machine:
    """How busy the whole machine was over a phase, and how much of that was not this benchmark
    (other work on the same cores makes every figure here slower: see bench/RESULTS.md)."""

    def __init__(self) -> None:
        self.groups: list[int] = []

    @staticmethod
    def _stat() -> tuple[float, float]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values[:8]) - idle, sum(values[:8])

    def _ours(self) -> float:
        pgids = {os.getpgid(0), *self.groups}
        total = 0.0
        for pgid in pgids:
            total += sum(cpu_seconds(pid) for pid in group_pids(pgid))
        return total

    def start(self, *groups: int) -> "Machine":
        self.groups = list(groups)
        self.busy0, self.total0 = self._stat()
        self.ours0, self.t0 = self._ours(), time.monotonic()
        self.backends0 = backend_cpu()
        return self

    def report(self, *groups: int) -> str:
        self.groups = sorted(set(self.groups) | set(groups))
        busy, total = self._stat()
        hz = os.sysconf("SC_CLK_TCK")
        wall = time.monotonic() - self.t0
        cores = os.cpu_count() or 1
        busy_s = (busy - self.busy0) / hz
        ours = self._ours() - self.ours0
        backends = backend_cpu_since(self.backends0)  # only those still connected: a lower bound
        other = busy_s - ours - backends
        return (f"machine {100 * busy_s / (wall * cores):.0f}% busy over {wall:.0f} s on {cores} cores: the "
                f"benchmark's Python processes {100 * ours / (wall * cores):.0f}%, its PostgreSQL backends "
                f"{100 * backends / (wall * cores):.0f}%, other work {100 * other / (wall * cores):.0f}%; "
                f"load average {os.getloadavg()[0]:.2f}")


def start_group(cmd: list[str], **extra: str) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env(**extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def start_cluster(**extra: str) -> subprocess.Popen:
    return start_group([PY, "manage.py", "qcluster"], Q_WORKERS="1", DISPATCH_WORKERS="1", **extra)


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every 10 ms until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, rss_kb(pid), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, rss_kb(self.pid))

    def stop(self) -> int:
        self.done.set()
        self.join()
        return max(self.peak, rss_kb(self.pid))


def post(port: int, token: str, body: bytes, path: str = "/api/v1/batch/process") -> tuple[int, dict, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Authorization": f"Token {token}",
                                                    "Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return response.status, json.loads(data), elapsed


def api_get(port: int, token: str, url: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", url, headers={"Authorization": f"Token {token}"})
    return json.loads(conn.getresponse().read())


# --- the items ------------------------------------------------------------------------------------


def phone(i: int) -> str:
    return f"+1415{2000000 + i:07d}"


def make_items(kind: str, count: int, template_id: int, prefix: str = "r") -> list[dict]:
    """`content`: one shared content with two merge variables; `unique`: a pre-rendered text per
    item (every item's content differs, no variables); `template`: a template with 3 variables;
    `mixed`: template and content items alternating."""
    items = []
    for i in range(count):
        item = {"request_id": f"{prefix}-{i:07d}", "vendor_name": VENDORS[i % len(VENDORS)], "channel": "sms",
                "recipient": phone(i)}
        k = kind if kind != "mixed" else ("template" if i % 2 else "content")
        if k == "content":
            item.update(content=SHARED_CONTENT, variables={"name": f"Person {i}", "code": f"{(i * 7919) % 1000000:06d}"})
        elif k == "unique":
            item["content"] = f"Hello Person {i}, your code is {(i * 7919) % 1000000:06d}. It expires in 10 minutes."
        elif k == "template":
            item.update(template_id=template_id, variables={
                "first_name": f"Person{i}", "order_no": f"A-{i:07d}", "ship_date": f"2026-12-{1 + i % 28:02d}"})
        else:
            raise ValueError(kind)
        items.append(item)
    return items


def clear_batches() -> None:
    # Queued tasks go, so the dispatcher slots they held are freed too (else the next kick finds
    # them taken until their hold expires).
    psql("TRUNCATE campaigns_message, campaigns_messagebatch; UPDATE campaigns_batchstream "
         "SET leased_until = NULL, lease_token = ''; UPDATE campaigns_dispatchslot SET busy_until = NULL; "
         "DELETE FROM django_q_ormq; DELETE FROM django_q_task", DB_NAME)


# --- 1. ingest ------------------------------------------------------------------------------------


def ingest(port: int, token: str, web_pid: int, kinds: list[str], count: int, runs: int, template_id: int) -> dict:
    """Runs interleave the kinds (content, unique, template, content, ...) so that each kind
    samples the same minutes of a machine whose speed drifts."""
    bodies = {kind: json.dumps(make_items(kind, count, template_id)).encode() for kind in kinds}
    rows: dict[str, list[dict]] = {kind: [] for kind in kinds}
    fresh_rss, fresh_hwm = rss_kb(web_pid), rss_kb(web_pid, "VmHWM")
    machine = Machine().start(web_pid)
    for i in range(runs):
        for kind in kinds:
            body = bodies[kind]
            clear_batches()
            before, hwm_before = rss_kb(web_pid), rss_kb(web_pid, "VmHWM")
            web_cpu, backends = cpu_seconds(web_pid), backend_cpu()
            sampler = RssSampler(web_pid)
            sampler.start()
            status, data, elapsed = post(port, token, body)
            peak = sampler.stop()
            web_cpu, pg_cpu = cpu_seconds(web_pid) - web_cpu, backend_cpu_since(backends)
            if status != 200:
                raise SystemExit(f"ingest failed: {status} {json.dumps(data)[:2000]}")
            row = {"kind": kind, "run": i + 1, "items": data["data"]["total_json_objects"], "body_mb": len(body) / 1e6,
                   "request_s": elapsed, "processing_ms": data["data"]["processing_time_ms"],
                   "rss_before_mb": before / 1024, "rss_peak_mb": peak / 1024,
                   "vmhwm_before_mb": hwm_before / 1024, "vmhwm_after_mb": rss_kb(web_pid, "VmHWM") / 1024,
                   "rss_after_mb": rss_kb(web_pid) / 1024, "web_cpu_s": web_cpu, "postgres_cpu_s": pg_cpu}
            rows[kind].append(row)
            print(f"  ingest {kind:8s} run {i + 1}: {row['items']:,} items, body {row['body_mb']:.1f} MB, "
                  f"request {elapsed:.2f} s, server processing_time_ms {row['processing_ms']:,.0f}, CPU: web "
                  f"{web_cpu:.2f} s + PostgreSQL {pg_cpu:.2f} s, "
                  f"web RSS {row['rss_before_mb']:.0f} -> peak {row['rss_peak_mb']:.0f} MB "
                  f"(VmHWM {row['vmhwm_before_mb']:.0f} -> {row['vmhwm_after_mb']:.0f}), after {row['rss_after_mb']:.0f} MB")
    busy = machine.report()
    results = {"kinds": [], "machine": busy, "web_rss_fresh_mb": round(fresh_rss / 1024),
               "web_vmhwm_fresh_mb": round(fresh_hwm / 1024),
               "web_rss_peak_first_request_mb": round(rows[kinds[0]][0]["rss_peak_mb"]),
               "web_vmhwm_end_mb": round(rss_kb(web_pid, "VmHWM") / 1024),
               "web_rss_end_mb": round(rss_kb(web_pid) / 1024)}
    for kind in kinds:
        r = rows[kind]
        median = {"kind": kind, "runs": runs, "items": count, "body_mb": round(r[0]["body_mb"], 1),
                  "request_s_median": round(statistics.median(x["request_s"] for x in r), 2),
                  "processing_ms_median": round(statistics.median(x["processing_ms"] for x in r)),
                  "outside_service_s_median": round(statistics.median(
                      x["request_s"] - x["processing_ms"] / 1000 for x in r), 2),
                  "items_per_s_median": round(count / statistics.median(x["request_s"] for x in r)),
                  "request_s_min": round(min(x["request_s"] for x in r), 2),
                  "processing_ms_min": round(min(x["processing_ms"] for x in r)),
                  "web_cpu_s_median": round(statistics.median(x["web_cpu_s"] for x in r), 2),
                  "postgres_cpu_s_median": round(statistics.median(x["postgres_cpu_s"] for x in r), 2),
                  "rss_peak_mb_max": round(max(x["rss_peak_mb"] for x in r)),
                  "runs_detail": r}
        print(f"ingest {kind}: median of {runs}: request {median['request_s_median']} s "
              f"({median['items_per_s_median']:,} items/s), server processing {median['processing_ms_median']:,} ms, "
              f"outside the service (transfer, JSON parse, auth, response) {median['outside_service_s_median']} s; "
              f"min request {median['request_s_min']} s / processing {median['processing_ms_min']:,} ms; CPU: web "
              f"{median['web_cpu_s_median']} s + PostgreSQL {median['postgres_cpu_s_median']} s; "
              f"body {median['body_mb']} MB")
        results["kinds"].append(median)
    print(f"web process RSS: {results['web_rss_fresh_mb']} MB fresh -> peak {results['web_rss_peak_first_request_mb']} MB "
          f"during the first 100k ingest; VmHWM {results['web_vmhwm_end_mb']} MB after all {runs * len(kinds)} "
          f"ingests (RSS now {results['web_rss_end_mb']} MB)")
    print("  " + busy)
    clear_batches()
    return results


# --- 2. ordered publish ---------------------------------------------------------------------------


def ordered_publish(port: int, token: str, gateway, kind: str, batches: int, total: int, template_id: int) -> dict:
    from django.db.models import Max, Min

    from campaigns.models import BatchStatus, Message, MessageBatch

    clear_batches()
    gateway.reset()
    per_batch = total // batches
    for b in range(batches):  # stored with no worker running: the publisher starts with all of them waiting
        items = make_items(kind, per_batch, template_id, prefix=f"b{b}")
        status, data, _ = post(port, token, json.dumps(items).encode())
        if status != 200:
            raise SystemExit(f"ingest failed: {status} {json.dumps(data)[:2000]}")
    stored = Message.objects.filter(batch__isnull=False).count()
    machine = Machine().start()
    cluster = start_cluster(SMS_BACKEND=GATEWAY_BACKEND, SMS_GATEWAY_URL=f"{gateway.url}/api/v1/send",
                            SMS_GATEWAY_TOKEN="")
    started = time.monotonic()
    try:
        while True:
            open_batches = MessageBatch.objects.exclude(status__in=[BatchStatus.COMMITTED, BatchStatus.FAILED]).count()
            if not open_batches:
                break
            if time.monotonic() - started > 900:
                raise SystemExit("ordered publish: not finished after 15 minutes")
            time.sleep(0.1)
        wall = time.monotonic() - started
        busy = machine.report(cluster.pid)
    finally:
        stop_cluster_at = time.monotonic()
        stop_group(cluster)
    requests = gateway.requests()
    first_arrival = requests[0].at if requests else stop_cluster_at

    # The check: every item received exactly once, in (batch_sequence, item_sequence) order.
    order = {str(uid): (bseq, iseq) for uid, bseq, iseq in
             Message.objects.filter(batch__isnull=False).values_list("uid", "batch__sequence", "sequence")}
    keys = [r.idempotency_key for r in requests]
    counts = Counter(keys)
    duplicates = sum(1 for n in counts.values() if n > 1)
    missing = len(set(order) - set(counts))
    unknown = len(set(counts) - set(order))
    positions = [order[k] for k in keys if k in order]
    inversions = sum(1 for a, b in zip(positions, positions[1:]) if b <= a)
    batch_rows = list(MessageBatch.objects.order_by("sequence").values(
        "sequence", "status", "total_items", "sent_count", "committed_at", "started_at"))
    spans = {row["batch__sequence"]: row for row in Message.objects.filter(batch__isnull=False).values(
        "batch__sequence").annotate(first=Min("sent_at"), last=Max("sent_at"))}
    overlaps = sum(1 for a, b in zip(batch_rows, batch_rows[1:])
                   if a["committed_at"] is None or spans[b["sequence"]]["first"] < a["committed_at"])
    first_sent = min(s["first"] for s in spans.values())
    last_sent = max(s["last"] for s in spans.values())
    last_commit = max(row["committed_at"] for row in batch_rows)
    span = (last_commit - first_sent).total_seconds()
    steady = (last_sent - first_sent).total_seconds()
    ok = (len(requests) == stored == total and not duplicates and not missing and not unknown and not inversions
          and not overlaps and all(row["status"] == BatchStatus.COMMITTED for row in batch_rows))
    result = {"kind": kind, "batches": batches, "items": total, "stored": stored, "received": len(requests),
              "delivered": len(gateway.delivered()), "duplicates": duplicates, "missing": missing, "unknown": unknown,
              "order_inversions": inversions, "batch_overlaps": overlaps,
              "statuses": [row["status"] for row in batch_rows],
              "first_send_to_last_commit_s": round(span, 2), "per_second": round(total / span),
              "steady_per_second": round((total - 1) / steady) if steady else 0,
              "wall_from_cluster_start_s": round(wall, 2), "wall_per_second": round(total / wall),
              "cluster_start_to_first_send_s": round(first_arrival - started, 2),
              "batch_commit_after_first_send_s": [round((row["committed_at"] - first_sent).total_seconds(), 2)
                                                  for row in batch_rows],
              "check": "PASS" if ok else "FAIL", "machine": busy}
    print(f"ordered publish ({kind} items), {batches} batches x {per_batch:,}, 1 worker: {total:,} items, first send -> "
          f"last batch committed {span:.2f} s = {result['per_second']:,}/s (steady {result['steady_per_second']:,}/s); "
          f"wall from cluster start {wall:.2f} s = {result['wall_per_second']:,}/s (first send after {result['cluster_start_to_first_send_s']} s); "
          f"batches committed at {result['batch_commit_after_first_send_s']} s")
    print(f"  check: gateway received {len(requests):,} requests for {stored:,} stored items; {len(counts):,} distinct "
          f"ids, duplicates {duplicates}, missing {missing}, unknown {unknown}; out-of-order arrivals by "
          f"(batch_sequence, item_sequence) {inversions}; a batch's first send before the previous batch committed "
          f"{overlaps}; statuses {result['statuses']} -> {result['check']}")
    print("  " + busy)
    return result


# --- 3. unordered campaign, one worker ------------------------------------------------------------


def campaign_single_worker(owner, gateway, size: int) -> dict:
    from django.db.models import Max, Min

    from campaigns import services
    from campaigns.models import Campaign, CampaignStatus, Message
    from inboxerr.actors import Actor
    from subscribers.models import SubscriberList

    clear_batches()
    gateway.reset()
    SubscriberList.objects.filter(owner=owner, name="phones").delete()
    lst = SubscriberList.objects.create(owner=owner, name="phones", key_field="phone")
    psql(f"""
        INSERT INTO subscribers_subscriber (list_id, key, email, phone, name, status, standard_fields, custom_fields,
                                            created_at, updated_at)
        SELECT {lst.pk}, '+1415' || (2000000 + g)::text, '', '+1415' || (2000000 + g)::text, 'Person ' || g, 'active',
               '{{}}', jsonb_build_object('n', g::text), now(), now()
        FROM generate_series(1, {size}) AS g;
        ANALYZE subscribers_subscriber;
    """, DB_NAME)
    SubscriberList.objects.filter(pk=lst.pk).update(subscriber_count=size)
    actor = Actor(user=owner, source="command")
    campaign = services.campaign_create(actor=actor, owner=owner, name=f"bench phones {time.time()}", channel="sms",
                                        message_content="Hello {{ name }}, your number is {{ n }}.", list_names=["phones"])
    campaign = services.campaign_start(actor=actor, campaign=campaign)
    services.campaign_fan_out(campaign_id=campaign.pk)
    machine = Machine().start()
    cluster = start_cluster(SMS_BACKEND=GATEWAY_BACKEND, SMS_GATEWAY_URL=f"{gateway.url}/api/v1/send",
                            SMS_GATEWAY_TOKEN="")
    started = time.monotonic()
    try:
        while Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).exists():
            time.sleep(0.1)
        wall = time.monotonic() - started
        busy = machine.report(cluster.pid)
    finally:
        stop_group(cluster)
    campaign = Campaign.objects.get(pk=campaign.pk)
    span = Message.objects.filter(campaign=campaign, status="sent").aggregate(a=Min("sent_at"), b=Max("sent_at"))
    steady = (span["b"] - span["a"]).total_seconds()
    keys = Counter(r.idempotency_key for r in gateway.requests())
    result = {"sent": campaign.sent_count, "wall_s": round(wall, 2), "per_second": round(campaign.sent_count / wall),
              "steady_per_second": round((campaign.sent_count - 1) / steady) if steady else 0,
              "duplicates": sum(1 for n in keys.values() if n > 1), "machine": busy}
    print(f"unordered campaign dispatch, 1 worker: {result['sent']:,} sent in {wall:.2f} s = {result['per_second']:,}/s "
          f"(steady {result['steady_per_second']:,}/s); duplicates {result['duplicates']}")
    print("  " + busy)
    Message.objects.filter(campaign=campaign).delete()
    return result


# --- machine reference: the gateway protocol alone -------------------------------------------------

_HTTP_BASELINE = """
import http.client, json, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection(host, port)
started = time.perf_counter()
for i in range(n):
    body = json.dumps({"to": "+14155550100", "body": f"Hello {i}", "id": f"baseline-{i}"}).encode()
    conn.request("POST", "/api/v1/send", body, {"Content-Type": "application/json", "Idempotency-Key": f"baseline-{i}"})
    conn.getresponse().read()
print(n / (time.perf_counter() - started))
"""


def gateway_baseline(gateway, count: int = 5000) -> float:
    """stdlib http.client with keep-alive from another process to the same loopback gateway: no
    Django, no database (a stand-alone run measured ~5k/s for this client against a plain server)."""
    out = run([PY, "-c", _HTTP_BASELINE, "127.0.0.1", str(gateway.port), str(count)])
    gateway.reset()
    rate = float(out.stdout.strip())
    print(f"gateway protocol alone (http.client keep-alive, another process, no Django, no database): {rate:,.0f} requests/s")
    return rate


# --- profile --------------------------------------------------------------------------------------


def profile(kind: str, count: int, owner, template_id: int) -> None:
    """The ingest in this process: JSON parse as the API's parser does it, then batch_ingest
    timed phase by phase (validation, suppression look-up, COPY), then once under cProfile."""
    import cProfile
    import io
    import pstats

    from campaigns import batches
    from inboxerr.actors import Actor
    from inboxerr.parsers import StrictJSONParser
    from subscribers.normalize import normalize_phone

    body = json.dumps(make_items(kind, count, template_id)).encode()
    clear_batches()
    started = time.perf_counter()
    items = StrictJSONParser().parse(io.BytesIO(body))
    parsed = time.perf_counter() - started
    print(f"profile {kind}, {count:,} items: parse of {len(body) / 1e6:.1f} MB with StrictJSONParser {parsed:.2f} s "
          f"(plain json.loads {timed(lambda: json.loads(body)):.2f} s)")
    phases: Counter = Counter()
    originals = {name: getattr(batches, name) for name in ("batch_items_clean", "_suppressed", "_write_items")}

    def timed_phase(name, fn):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] += time.perf_counter() - started
        return wrapper

    for name, fn in originals.items():
        setattr(batches, name, timed_phase(name, fn))
    try:
        started = time.perf_counter()
        batch = batches.batch_ingest(actor=Actor(user=owner, source="api"), owner=owner, items=items)
        total = time.perf_counter() - started
    finally:
        for name, fn in originals.items():
            setattr(batches, name, fn)
    clear_batches()
    print(f"batch_ingest {total:.2f} s (processing_time_ms {batch.processing_time_ms:,.0f}): "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items())
          + f", the rest {total - sum(phases.values()):.2f} s")
    print(f"  within validation: normalize_phone alone {timed(lambda: [normalize_phone(phone(i)) for i in range(count)]):.2f} s")
    profiler = cProfile.Profile()
    profiler.enable()
    batches.batch_ingest(actor=Actor(user=owner, source="api"), owner=owner, items=items)
    profiler.disable()
    clear_batches()
    for order, limit in (("cumulative", 30), ("tottime", 20)):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(limit)
        print(out.getvalue())


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="items per ingested batch")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default="content,unique,template")
    parser.add_argument("--publish-batches", type=int, default=3)
    parser.add_argument("--publish-items", type=int, default=30_000, help="total over the publish batches")
    parser.add_argument("--publish-kinds", default="template,content")
    parser.add_argument("--campaign-messages", type=int, default=20_000)
    parser.add_argument("--no-campaign", action="store_true", help="skip the single-worker campaign comparison")
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--profile", metavar="KIND", help="only: cProfile one in-process ingest of this kind")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the start")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results-batches.json")
    args = parser.parse_args()

    print(f"date {time.strftime('%Y-%m-%d %H:%M')}; {platform.node()}; {os.cpu_count()} cores; "
          f"{platform.processor() or platform.machine()}; Python {platform.python_version()}")
    if not args.keep_db:
        psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'") != "1":
        psql(f"CREATE DATABASE {DB_NAME}")
    print("PostgreSQL", psql("SHOW server_version"))
    head = run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).stdout.strip()
    dirty = run(["git", "status", "--short", "--untracked-files=no"], cwd=ROOT).stdout.split()
    print(f"code: commit {head}" + (f" + uncommitted changes in {', '.join(dirty[1::2])}" if dirty else ""))
    run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env())
    run([PY, "manage.py", "bootstrap", "--username", "bench"], cwd=ROOT, env=env())
    token = run([PY, "manage.py", "create_api_token", "bench"], cwd=ROOT, env=env()).stdout.strip().splitlines()[-1]

    os.environ.update(env())
    os.environ["DJANGO_SETTINGS_MODULE"] = "inboxerr.settings"
    import logging

    import django

    django.setup()
    logging.getLogger("django-q").setLevel(logging.WARNING)
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns.models import MessageTemplate, RateLimit
    from inboxerr.actors import Actor

    owner = get_user_model().objects.get(username="bench")
    template = MessageTemplate.objects.filter(owner=owner, name="bench-sms").first() or services.template_create(
        actor=Actor(user=owner, source="command"), owner=owner, name="bench-sms", channel="sms", body_text=TEMPLATE_BODY)
    RateLimit.objects.all().delete()
    psql("DELETE FROM django_q_ormq; DELETE FROM django_q_schedule", DB_NAME)  # no ticks: each run is timed alone

    if args.profile:
        profile(args.profile, args.items, owner, template.pk)
        return

    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
                     "postgresql": psql("SHOW server_version")}
    port = free_port()
    web = start_group([PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])
    gateway = None
    try:
        for _ in range(150):
            try:
                api_get(port, token, "/api/v1/outbox/status")
                break
            except OSError:
                time.sleep(0.2)
        print(f"web server pid {web.pid}, RSS after start-up and one request {rss_kb(web.pid) / 1024:.0f} MB")
        if not args.no_ingest:
            kinds = [k for k in args.kinds.split(",") if k]
            results["ingest"] = ingest(port, token, web.pid, kinds, args.items, args.runs, template.pk)

        from campaigns.tests.gateway import Gateway

        gateway = Gateway().start()
        results["gateway_protocol_alone_per_second"] = round(gateway_baseline(gateway))
        # The campaign runs before and after the publish runs, so that the comparison is not
        # skewed by the machine's drift (or other work) over the minutes between them.
        campaign_runs = []
        if not args.no_campaign:
            campaign_runs.append(campaign_single_worker(owner, gateway, args.campaign_messages))
        if not args.no_publish:
            results["ordered_publish"] = [
                ordered_publish(port, token, gateway, kind, args.publish_batches, args.publish_items, template.pk)
                for kind in args.publish_kinds.split(",") if kind
            ]
        if not args.no_campaign:
            campaign_runs.append(campaign_single_worker(owner, gateway, args.campaign_messages))
            results["campaign_single_worker"] = campaign_runs
            base_steady = statistics.mean(r["steady_per_second"] for r in campaign_runs)
            base_wall = statistics.mean(r["per_second"] for r in campaign_runs)
            for row in results.get("ordered_publish", []):
                print(f"ordered publish ({row['kind']}) / unordered campaign, 1 worker (mean of the runs before and "
                      f"after): steady {row['steady_per_second']:,} / {base_steady:,.0f} = "
                      f"{row['steady_per_second'] / base_steady:.2f} x; wall from cluster start "
                      f"{row['wall_per_second']:,} / {base_wall:,.0f} = {row['wall_per_second'] / base_wall:.2f} x")
    finally:
        if gateway is not None:
            gateway.stop()
        stop_group(web)
    args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print("written", args.json)
    if any(row["check"] != "PASS" for row in results.get("ordered_publish", [])):
        sys.exit(1)


if __name__ == "__main__":
    main()
