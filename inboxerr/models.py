from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a django-q2 worker ran the scheduled heartbeat task; /health reads it."""

    name = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(null=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class MetricCounter(models.Model):
    """A Prometheus counter (or histogram bucket) kept in the database, so the figure /metrics
    serves is the sum of the work of every process on every machine. Incremented by
    inboxerr.metrics.counter_add inside the transaction that does the work."""

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=300, blank=True)  # "k=v,k=v", keys sorted
    value = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="metric_counter_unique")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} {self.value}"
