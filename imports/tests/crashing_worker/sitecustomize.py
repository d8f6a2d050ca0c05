"""Put on PYTHONPATH of a qcluster started by a test (and of nothing else), this makes the
worker process die by SIGKILL, as the kernel's out-of-memory killer would end it:
- with CRASHING_WORKER_KEY, when it is about to write an import chunk holding the row with that key;
- with CRASHING_WORKER_CAMPAIGN (a campaign id), when its fan-out has inserted the campaign's
  messages and not yet committed them (the run's transaction open, the campaign row locked).
Each death appends a line to CRASHING_WORKER_LOG first, so the test knows it happened; with
CRASHING_WORKER_DEATHS, the worker dies only while the log has fewer lines than that.

Python imports `sitecustomize` from the path at start-up; this one wraps django.setup so the
code is patched once the apps are loaded. Inboxerr's own code has no hook for it."""

import os
import signal

import django

_KEY = os.environ.get("CRASHING_WORKER_KEY", "")
_CAMPAIGN = os.environ.get("CRASHING_WORKER_CAMPAIGN", "")
_LOG = os.environ.get("CRASHING_WORKER_LOG", "")
_DEATHS = int(os.environ.get("CRASHING_WORKER_DEATHS", "0") or 0)
_setup = django.setup


def _die() -> None:
    with open(_LOG, "a+") as log:
        log.seek(0)
        if _DEATHS and len(log.read().splitlines()) >= _DEATHS:
            return
        log.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


def _setup_then_patch(*args, **kwargs):
    _setup(*args, **kwargs)
    if _KEY:
        from imports import writers

        write = writers.PostgresChunkWriter.write

        def write_or_die(self, rows, count):
            # A chunk's rows arrive packed as COPY text lines (the key first) or as CleanRows.
            keys = (line.split("\t", 1)[0] for line in rows.splitlines()) if isinstance(rows, str) else (r.key for r in rows)
            if _KEY in keys:
                _die()
            return write(self, rows, count)

        writers.PostgresChunkWriter.write = write_or_die
    if _CAMPAIGN:
        from campaigns import services

        fan_out = services._fan_out_postgres

        def fan_out_then_die(campaign, list_ids):
            written = fan_out(campaign, list_ids)
            if str(campaign.pk) == _CAMPAIGN:
                _die()
            return written

        services._fan_out_postgres = fan_out_then_die


if (_KEY or _CAMPAIGN) and _LOG:
    django.setup = _setup_then_patch
