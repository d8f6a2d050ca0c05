"""The shared token bucket on Redis (REDIS_URL set): a real Redis on loopback."""

import pytest

from campaigns import ratelimit
from campaigns.tests.buckets import rate_limit_row


@pytest.fixture
def redis_bucket(settings, db):
    import redis

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    ratelimit._redis.cache_clear()
    ratelimit._config_cache.clear()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("inboxerr:ratelimit:email")
    yield client
    client.delete("inboxerr:ratelimit:email")
    ratelimit._redis.cache_clear()
    ratelimit._config_cache.clear()


def test_redis_bucket_lets_a_burst_through_then_spaces_sends_at_the_rate(redis_bucket):
    rate_limit_row(name="email", rate=100, burst=5)
    waits: list[float] = []
    for _ in range(10):
        ratelimit.acquire("email", sleep=waits.append)
    assert len(waits) == 5  # the first five ride the burst
    # Each later send waits for one more token: 1/100 s apart, give or take clock drift.
    assert all(0.0 < w <= 0.06 for w in waits)
    assert waits == sorted(waits)


def test_redis_bucket_paused_and_unlimited(redis_bucket):
    assert ratelimit.acquire("email", sleep=lambda s: None) == 0.0  # no row: no limit
    ratelimit._config_cache.clear()
    rate_limit_row(name="email", rate=0, burst=5)
    with pytest.raises(ratelimit.ChannelPaused):
        ratelimit.acquire("email", sleep=lambda s: None)
