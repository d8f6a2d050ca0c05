"""django-q2 entry points of the operations app."""

from operations.services import activity_rollup


def rollup() -> None:
    activity_rollup()
