"""Errors a service raises when an operation cannot be done; the API turns them into JSON
(`{"detail": ..., "field": ...}`) with their status code, the admin into a message."""


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}

    def as_dict(self) -> dict:
        data = {"detail": self.message}
        if self.field:
            data["field"] = self.field
        data.update(self.extra)
        return data


class InvalidInput(ServiceError):
    status_code = 400


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409
