"""Work that crashes its worker: the one rule for what a sweeper hands out again (import jobs,
webhook deliveries; campaign messages count their attempts the same way in dispatch.py).

A run that dies without recording an outcome (the process killed, out of memory, a timeout) or
that raises where nothing expected it counts against the retries the work is allowed. Once
they are used the work is parked failed with the reason, "Worker crashed 3 times while
processing this import; last error: ...", instead of being handed out again: a job that kills
every worker that takes it would otherwise be taken forever."""

from inboxerr.storable import storable

MAX_ERROR_CHARS = 300


def error_summary(exc: BaseException) -> str:
    """The exception's type and the first line of its message, storable and short enough for a
    status line: 'IntegrityError: new row for relation "x" violates check constraint "y"'."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return storable(text[:MAX_ERROR_CHARS])


def crashed_reason(*, doing: str, last_error: str, crashes: int | None = None) -> str:
    """Why work was parked: 'Worker crashed 3 times while processing this import; last error:
    ...'. Without `crashes` where the work cannot tell its crashes from its recorded failures."""
    times = "" if crashes is None else " once" if crashes == 1 else f" {crashes} times"
    return f"Worker crashed{times} while {doing}; last error: {last_error or 'none recorded'}"
