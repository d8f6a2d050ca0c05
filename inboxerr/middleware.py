"""Input PostgreSQL cannot store, refused at the door of the API: a NUL character in the address
(`/api/v1/subscribers/list/a%00b`) or in a query parameter (`?address=a%00b`) answers 400 naming
it, before a view hands it to the database, which would fail with a 500. JSON bodies are checked
by the API's parser (inboxerr/parsers.py)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from inboxerr.parsers import unstorable_text

API_PREFIX = "/api/"


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
        if request.path.startswith(API_PREFIX):
            found = unstorable_request_part(request)
            if found:
                field, reason = found
                return JsonResponse({"detail": f"{field}: {reason}", "field": field}, status=400)
        return self.get_response(request)
