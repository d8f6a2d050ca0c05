"""Prometheus metrics that are right across processes: counters live in the database
(MetricCounter, incremented in the transaction that does the work) and gauges are read from the
tables at scrape time. prometheus_client renders the text format."""

import hmac
import ipaddress

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from inboxerr.models import MetricCounter

DISPATCH_LOOP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

COUNTERS = {
    "import_rows_processed": "Rows read by import jobs (valid, invalid and duplicate).",
    "messages_sent": "Messages accepted by a channel backend.",
    "messages_failed": "Messages that failed for good, by channel and reason.",
    "ratelimit_wait_seconds": "Seconds dispatchers waited for rate-limit tokens, by channel.",
    "webhook_deliveries": "Webhook delivery attempts by outcome.",
    "batch_items_sent": "Batch API items sent by the ordered publisher, by channel.",
    "batches_finished": "Batches the ordered publisher finished, by status (committed or failed).",
}
HISTOGRAMS = {"dispatcher_loop_duration_seconds": "Time of one dispatcher batch: claim, send, record."}


def _labels(labels: dict) -> str:
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def counter_add(name: str, amount: float = 1, **labels: str) -> None:
    """Add to a counter (name without the _total suffix). One upsert; call it inside the
    transaction that does the counted work."""
    if amount:
        _upsert([(name, _labels(labels), amount)])


def histogram_observe(name: str, value: float, buckets: tuple = DISPATCH_LOOP_BUCKETS, **labels: str) -> None:
    base = _labels(labels)
    rows = [(f"{name}_bucket", _labels({**labels, "le": str(le)}), 1) for le in buckets if value <= le]
    rows += [(f"{name}_bucket", _labels({**labels, "le": "+Inf"}), 1), (f"{name}_sum", base, value), (f"{name}_count", base, 1)]
    _upsert(rows)


def metrics_add(*, counters: dict | None = None, observations: dict | None = None,
                buckets: tuple = DISPATCH_LOOP_BUCKETS) -> None:
    """Many counter increments and histogram observations in one upsert, for a worker that folds
    what it counted over a second instead of writing per event. `counters`: {(name, labels
    tuple): amount}; `observations`: {histogram name: [values]} (no labels)."""
    rows = [(name, _labels(dict(labels)), amount) for (name, labels), amount in (counters or {}).items() if amount]
    for name, values in (observations or {}).items():
        if not values:
            continue
        rows += [(f"{name}_bucket", _labels({"le": str(le)}), sum(1 for v in values if v <= le)) for le in buckets]
        rows += [(f"{name}_bucket", _labels({"le": "+Inf"}), len(values)), (f"{name}_sum", "", sum(values)),
                 (f"{name}_count", "", len(values))]
    rows = [row for row in rows if row[2]]
    if rows:
        _upsert(rows)


def _upsert(rows: list[tuple[str, str, float]]) -> None:
    table = MetricCounter._meta.db_table
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    params = [item for row in rows for item in row]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (name, labels, value) VALUES {values} "
            "ON CONFLICT (name, labels) DO UPDATE SET value = " + table + ".value + excluded.value",
            params,
        )


def _split(labels: str) -> dict:
    return dict(part.split("=", 1) for part in labels.split(",") if part)


class DatabaseCollector:
    """Reads the counters and the state gauges when Prometheus scrapes."""

    def collect(self):
        rows = list(MetricCounter.objects.values_list("name", "labels", "value"))
        for name, help_text in COUNTERS.items():
            family = None
            for row_name, labels, value in rows:
                if row_name != name:
                    continue
                parsed = _split(labels)
                if family is None:
                    family = CounterMetricFamily(name, help_text, labels=sorted(parsed))
                family.add_metric([parsed[k] for k in sorted(parsed)], value)
            yield family or CounterMetricFamily(name, help_text, value=0)
        for name, help_text in HISTOGRAMS.items():
            buckets = {_split(labels)["le"]: value for row_name, labels, value in rows if row_name == f"{name}_bucket"}
            total = next((value for row_name, _, value in rows if row_name == f"{name}_sum"), 0.0)
            ordered = [(str(le), buckets.get(str(le), 0.0)) for le in DISPATCH_LOOP_BUCKETS] + [("+Inf", buckets.get("+Inf", 0.0))]
            family = HistogramMetricFamily(name, help_text)
            family.add_metric([], ordered, sum_value=total)
            yield family
        yield from _state_gauges()


def _state_gauges():
    from campaigns.models import Campaign, Message, MessageBatch, OutboxSwitch
    from imports.models import ImportJob

    messages = GaugeMetricFamily("messages", "Messages by status (queue depth: queued and sending).", labels=["status"])
    for status, count in Message.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"):
        messages.add_metric([status], count)
    yield messages
    jobs = GaugeMetricFamily("jobs", "Background jobs by kind and status.", labels=["kind", "status"])
    for status, count in ImportJob.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"):
        jobs.add_metric(["import", status], count)
    for kind, status, count in Campaign.objects.values_list("kind", "status").annotate(n=Count("pk")).values_list("kind", "status", "n"):
        jobs.add_metric([kind, status], count)
    for status, count in MessageBatch.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"):
        jobs.add_metric(["batch", status], count)
    yield jobs
    switch = OutboxSwitch.objects.filter(pk=1).values_list("enabled", flat=True).first()
    running = settings.ENABLE_OUTBOX_PROCESSOR if switch is None else switch
    yield GaugeMetricFamily("outbox_running", "1 while the batch publisher's switch is on, else 0.", value=int(running))


def _allowed(request: HttpRequest) -> bool:
    if settings.METRICS_TOKEN:
        # Constant time: the compare must not tell a caller how much of a guess was right.
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, f"Bearer {settings.METRICS_TOKEN}".encode())
    # REMOTE_ADDR, never X-Forwarded-For: a header the caller writes cannot vouch for the caller.
    try:
        caller = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(caller in ipaddress.ip_network(allowed.strip(), strict=False) for allowed in settings.METRICS_ALLOWED_IPS)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse('{"detail": "Authentication credentials were not provided."}', status=401,
                            content_type="application/json")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
