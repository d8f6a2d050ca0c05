"""Django's error views (handler400/403/404/500), answering in the API's JSON error shape under
/api/ and with the site's own pages everywhere else.

DRF answers the errors its views raise itself (inboxerr/exceptions.py); these cover what happens
outside a view: an address no route matches, an exception no handler knew, a request Django
refused before any view ran. A script calling the API then always reads `{"detail": ...}`, never
an HTML page it cannot parse.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from inboxerr.middleware import is_api


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        # Django's own cap on bodies it holds in memory (DATA_UPLOAD_MAX_MEMORY_SIZE).
        return JsonResponse({"detail": "body: larger than DATA_UPLOAD_MAX_MEMORY_SIZE", "field": "body"}, status=413)
    return JsonResponse({"detail": "Bad request: the server could not read it (malformed headers, host or form)"},
                        status=400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(
        {"detail": f"No API operation at {request.path} (the operations are listed in /api/schema/)", "field": "path"},
        status=404,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if not is_api(request):
        return defaults.server_error(request)
    # Django has logged the exception (django.request) before calling this view.
    return JsonResponse({"detail": "Server error: it has been logged; try again in a moment"}, status=500)
