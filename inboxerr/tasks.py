"""django-q2 entry points of the project package."""

from inboxerr.health import worker_heartbeat


def heartbeat() -> None:
    worker_heartbeat()
