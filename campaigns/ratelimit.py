"""A token bucket shared by every worker on every machine, kept in the database (one row per
channel, edited in the admin). A worker reserves tokens with one UPDATE; if the bucket is in
debt it sleeps until its reservation is due. No row, or a disabled one: no limit."""

import time

from django.db import connection

from campaigns.models import RateLimit

TABLE = RateLimit._meta.db_table


class ChannelPaused(Exception):
    """The channel's rate is 0: nothing may be sent on it now."""


def acquire(name: str, count: int = 1, sleep=time.sleep) -> float:
    """Take `count` tokens from bucket `name`; returns the seconds waited. Raises ChannelPaused
    when the bucket's rate is 0."""
    if connection.vendor == "postgresql":
        sql = f"""
            UPDATE {TABLE} SET
                tokens = LEAST(burst, tokens + rate * EXTRACT(EPOCH FROM clock_timestamp() - refilled_at)) - %s,
                refilled_at = clock_timestamp()
            WHERE name = %s AND enabled AND rate > 0
            RETURNING tokens, rate
        """
    else:
        sql = f"""
            UPDATE {TABLE} SET
                tokens = MIN(burst, tokens + rate * ((julianday('now') - julianday(refilled_at)) * 86400.0)) - %s,
                refilled_at = strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')
            WHERE name = %s AND enabled AND rate > 0
            RETURNING tokens, rate
        """
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, name])
        row = cursor.fetchone()
    if row is None:
        if RateLimit.objects.filter(name=name, enabled=True, rate__lte=0).exists():
            raise ChannelPaused(f"sending on {name} is paused (rate 0)")
        return 0.0
    tokens, rate = row
    if tokens >= 0:
        return 0.0
    wait = -tokens / rate
    sleep(wait)
    return wait
