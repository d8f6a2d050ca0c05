"""A token bucket shared by every worker on every machine. Its settings are a RateLimit row per
channel, edited in the admin. The tokens live in the database (one UPDATE reserves them) or, when
REDIS_URL is set, in Redis (one atomic script call). A worker that reserves into debt sleeps
until its reservation is due. No row, or a disabled one: no limit; rate 0: the channel is paused."""

import time
from functools import lru_cache

from django.conf import settings
from django.db import connection

from campaigns.models import RateLimit
from inboxerr.metrics import counter_add

TABLE = RateLimit._meta.db_table


class ChannelPaused(Exception):
    """The channel's rate is 0: nothing may be sent on it now."""


def acquire(name: str, count: int = 1, sleep=time.sleep) -> float:
    """Take `count` tokens from bucket `name`; returns the seconds waited. Raises ChannelPaused
    when the bucket's rate is 0."""
    config = _config(name)
    if config is None:
        return 0.0  # no bucket for this channel: no limit, and no query per send
    if config[0] <= 0:
        raise ChannelPaused(f"sending on {name} is paused (rate 0)")
    if settings.REDIS_URL:
        return _acquire_redis(name, count, sleep)
    return _acquire_database(name, count, sleep)


def rate_limit_of(name: str) -> tuple | None:
    """(rate, burst) of the channel's enabled bucket, or None when it has no limit."""
    return _config(name)


def tokens_per_call(name: str) -> int:
    """How many tokens to take at once: about 50 ms of the rate, so a worker makes few bucket
    round trips at high rates without sending in visible bursts at low ones."""
    config = _config(name)
    if config is None or config[0] <= 0:
        return 1
    return max(1, min(int(config[0] / 20), 100))


def _acquire_database(name: str, count: int, sleep) -> float:
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
    counter_add("ratelimit_wait_seconds", wait, channel=name)
    sleep(wait)
    return wait


# Refill and take in one step on the Redis server, with the server's clock, so every worker on
# every machine shares one bucket. Returns the tokens left (negative: in debt).
_REDIS_SCRIPT = """
local rate, burst, take = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate) - take
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(tokens)
"""
CONFIG_SECONDS = 2.0  # how long a worker trusts the RateLimit row it read (admin edits apply within this)


def clear_config_cache() -> None:
    _config_cache.clear()


@lru_cache(maxsize=1)
def _redis():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    return client, client.register_script(_REDIS_SCRIPT)


_config_cache: dict[str, tuple[float, tuple | None]] = {}


def _config(name: str) -> tuple | None:
    """(rate, burst) of an enabled bucket, or None for no limit; cached for CONFIG_SECONDS."""
    now = time.monotonic()
    cached = _config_cache.get(name)
    if cached and now - cached[0] < CONFIG_SECONDS:
        return cached[1]
    row = RateLimit.objects.filter(name=name, enabled=True).values_list("rate", "burst").first()
    _config_cache[name] = (now, row)
    return row


def _acquire_redis(name: str, count: int, sleep) -> float:
    rate, burst = _config(name)
    _, script = _redis()
    tokens = float(script(keys=[f"inboxerr:ratelimit:{name}"], args=[rate, burst, count]))
    if tokens >= 0:
        return 0.0
    wait = -tokens / rate
    counter_add("ratelimit_wait_seconds", wait, channel=name)
    sleep(wait)
    return wait
