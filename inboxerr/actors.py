"""Who is acting: passed explicitly to every service so audit rows know the actor and source."""

from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class Actor:
    user: object | None  # a User, or None for the system (worker, scheduler)
    source: str  # api | admin | command | worker
    ip: str | None = None

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)

    @property
    def is_superuser(self) -> bool:
        return bool(getattr(self.user, "is_superuser", False))

    def metadata(self) -> dict:
        data = {"source": self.source}
        if self.ip:
            data["ip"] = self.ip
        return data

    @classmethod
    def from_request(cls, request: HttpRequest, source: str = "api") -> "Actor":
        # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
        return cls(user=request.user, source=source, ip=request.META.get("REMOTE_ADDR"))

    @classmethod
    def system(cls, source: str = "worker") -> "Actor":
        return cls(user=None, source=source)
