"""Rate-limit rows for tests. Migrations create disabled email and sms rows; a test that measures
a bucket replaces the row with the one it describes."""

from campaigns.models import RateLimit


def rate_limit_row(*, name: str, **fields) -> RateLimit:
    RateLimit.objects.filter(name=name).delete()
    return RateLimit.objects.create(name=name, **fields)
