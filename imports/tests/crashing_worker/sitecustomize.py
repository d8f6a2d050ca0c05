"""Put on PYTHONPATH of a qcluster started by a test (and of nothing else), this makes the
worker process die by SIGKILL, as the kernel's out-of-memory killer would end it, when it is
about to write a chunk holding the row keyed CRASHING_WORKER_KEY. Each death appends a line to
CRASHING_WORKER_LOG first, so the test knows it happened.

Python imports `sitecustomize` from the path at start-up; this one wraps django.setup so the
chunk writer is patched once the apps are loaded. Inboxerr's own code has no hook for it."""

import os
import signal

import django

_KEY = os.environ.get("CRASHING_WORKER_KEY", "")
_LOG = os.environ.get("CRASHING_WORKER_LOG", "")
_setup = django.setup


def _setup_then_patch(*args, **kwargs):
    _setup(*args, **kwargs)
    from imports import writers

    write = writers.PostgresChunkWriter.write

    def write_or_die(self, rows, count):
        # A chunk's rows arrive packed as COPY text lines (the key first) or as CleanRows.
        keys = (line.split("\t", 1)[0] for line in rows.splitlines()) if isinstance(rows, str) else (r.key for r in rows)
        if _KEY in keys:
            with open(_LOG, "a") as log:
                log.write(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return write(self, rows, count)

    writers.PostgresChunkWriter.write = write_or_die


if _KEY and _LOG:
    django.setup = _setup_then_patch
