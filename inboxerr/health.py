"""GET /health: is the database answering, and has a worker beaten recently?"""

import socket
import os

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from inboxerr.models import WorkerHeartbeat

HEARTBEAT_NAME = "qcluster"


def worker_heartbeat() -> None:
    """Scheduled django-q2 task: record that a worker is alive (see inboxerr/tasks.py)."""
    WorkerHeartbeat.objects.update_or_create(
        name=HEARTBEAT_NAME,
        defaults={"beat_at": timezone.now(), "hostname": socket.gethostname(), "pid": os.getpid()},
    )


def health_report() -> tuple[dict, bool]:
    report: dict = {"database": {"ok": False}, "worker": {"ok": False}}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        report["database"] = {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # any failure to reach the database is the answer itself
        report["database"] = {"ok": False, "error": exc.__class__.__name__}
        return report, False
    beat = WorkerHeartbeat.objects.filter(name=HEARTBEAT_NAME).first()
    if beat:
        age = (timezone.now() - beat.beat_at).total_seconds()
        report["worker"] = {
            "ok": age <= settings.WORKER_HEARTBEAT_MAX_AGE.total_seconds(),
            "last_heartbeat": beat.beat_at.isoformat(),
            "age_seconds": round(age, 1),
        }
    else:
        report["worker"] = {"ok": False, "last_heartbeat": None}
    return report, report["database"]["ok"] and report["worker"]["ok"]


def health(request: HttpRequest) -> JsonResponse:
    # Health is public like a load balancer expects, and says nothing about the data.
    report, ok = health_report()
    report["status"] = "ok" if ok else "unavailable"
    return JsonResponse(report, status=200 if ok else 503)
