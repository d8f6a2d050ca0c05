"""Requests refused at the door of the API, before a view reads them.

- Input PostgreSQL cannot store: a NUL character in the address (`/api/v1/subscribers/list/a%00b`)
  or in a query parameter (`?address=a%00b`) answers 400 naming it, before a view hands it to the
  database, which would fail with a 500. JSON bodies are checked by the API's parser
  (inboxerr/parsers.py).
- Bodies over the route's limit answer 413 before a byte of the body is read: the Content-Length
  is compared with the limit; a body sent without one (chunked) is read only up to the limit.
"""

from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from inboxerr.parsers import unstorable_text

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def unstorable_request_part(request: HttpRequest) -> tuple[str, str] | None:
    """(what, reason) of the first part of the address or query string PostgreSQL cannot store."""
    if "\x00" in request.path:
        return "path", "NUL characters are not allowed"
    found = unstorable_text({key: request.GET.getlist(key) for key in request.GET})
    if found:
        return found[0].split("[", 1)[0], found[1]
    return None


class UnstorableInputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            found = unstorable_request_part(request)
            if found:
                field, reason = found
                return JsonResponse({"detail": f"{field}: {reason}", "field": field}, status=400)
        return self.get_response(request)


@dataclass(frozen=True)
class BodyLimit:
    """The largest body an API view accepts: the value of a setting, plus `overhead` bytes (the
    multipart form around an uploaded file). A view sets `body_limit = BodyLimit(...)`; the
    others take API_MAX_BODY_BYTES."""

    setting: str
    field: str = "body"
    overhead: int = 0

    def bytes(self) -> int:
        return getattr(settings, self.setting) + self.overhead

    def refusal(self, size: int) -> str:
        limit = f"{self.setting} ({getattr(settings, self.setting):,})"
        if self.overhead:
            limit += f" plus {self.overhead:,} bytes for the form"
        return f"{self.field}: {size:,} bytes is more than {limit}"


DEFAULT_BODY_LIMIT = BodyLimit("API_MAX_BODY_BYTES")


class BodyLimitMiddleware:
    """413 for an API body over its route's limit, decided before the view (or DRF's parsers, or
    Django's form parsing) reads the body. Listed before CsrfViewMiddleware, whose process_view
    may read a form body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not is_api(request):
            return None
        view_class = getattr(view_func, "cls", None)
        limit = getattr(view_class, "body_limit", DEFAULT_BODY_LIMIT)
        extra = getattr(view_class, "error_fields", {})
        raw_length = request.META.get("CONTENT_LENGTH") or ""
        if raw_length:
            try:
                length = int(raw_length)
            except ValueError:
                length = -1
            if length < 0:
                return _refuse(400, "body: the Content-Length header is not a number", "body", extra)
            if length > limit.bytes():
                return _refuse(413, limit.refusal(length), limit.field, extra)
            return None
        return _read_bounded(request, extra)


def _read_bounded(request: HttpRequest, extra: dict) -> HttpResponse | None:
    """A body without Content-Length (chunked) is read up to API_MAX_BODY_BYTES and no further,
    whatever the route: its size is known only by reading it, and a route with a larger limit
    holds its body in memory no longer than the rest. Read within the limit, it is handed on
    with its length, so the parsers see the body the client sent."""
    cap = settings.API_MAX_BODY_BYTES
    data = request.read(cap + 1)
    if len(data) > cap:
        return _refuse(413, f"body: sent without Content-Length and longer than API_MAX_BODY_BYTES ({cap:,}); "
                            "send a Content-Length", "body", extra)
    # What HttpRequest.body does with a body it has read: keep it, and a stream over it (the
    # request counts as read from now on, and only `_body` lets request.body answer then).
    request._body = data
    request._stream = BytesIO(data)
    if data:
        request.META["CONTENT_LENGTH"] = str(len(data))
    return None


def _refuse(status: int, detail: str, field: str, extra: dict) -> JsonResponse:
    return JsonResponse({**extra, "detail": detail, "field": field}, status=status)
