from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a django-q2 worker ran the scheduled heartbeat task; /health reads it."""

    name = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(null=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
