"""One JSON error shape for the whole API: {"detail": "<readable message>", ...}.

DRF's validation errors come as {"field": ["msg"]}; they are kept under "errors" and summarised
in "detail" so that a client (or a person reading a log) sees which field was wrong at once.
"""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inboxerr.errors import ServiceError
from inboxerr.throttling import throttle_failed_authentication


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status_code)
    exc = throttle_failed_authentication(exc, context.get("request"))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django answers 500 (JSON under /api/, see error_views)
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_error_body(exc.detail)
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif isinstance(response.data, dict) and "detail" not in response.data:
        response.data = validation_error_body(response.data)
    elif isinstance(response.data, list):
        response.data = validation_error_body(response.data)
    return response


def validation_error_body(detail: object) -> dict:
    """{"detail", "field" (when one field is at fault), "errors"} out of DRF's error detail:
    `errors` maps each field to its messages, or lists bad items as {index, field, message}."""
    body: dict = {"detail": _summarise(detail)}
    if isinstance(detail, dict):
        fields = [name for name in detail if name != "non_field_errors"]
        if len(fields) == 1:
            body["field"] = str(fields[0])
        body["errors"] = detail
    elif isinstance(detail, list) and any(isinstance(item, dict) for item in detail):
        body["errors"] = [
            {"index": index, "field": str(name), "message": _summarise(messages)}
            for index, item in enumerate(detail) if isinstance(item, dict)
            for name, messages in item.items()
        ]
    return body


def exception_handler_adding(**fields: object):
    """The same handler, with `fields` put first in every error body: an API whose seed answers
    `{"success": false, ...}` or `{"status": "error", ...}` keeps its clients' shape."""

    def handler(exc: Exception, context: dict) -> Response | None:
        response = exception_handler(exc, context)
        if response is not None and isinstance(response.data, dict):
            response.data = {**fields, **response.data}
        return response

    return handler


def _summarise(detail: object, prefix: str = "") -> str:
    """Flatten DRF's nested error detail into one readable line naming each field."""
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            label = "" if key == "non_field_errors" else name
            parts.append(_summarise(value, label))
        return "; ".join(p for p in parts if p)
    if isinstance(detail, list):
        if detail and all(not isinstance(item, (dict, list)) for item in detail):
            text = " ".join(str(item) for item in detail)
            return f"{prefix}: {text}" if prefix else text
        return "; ".join(
            _summarise(item, f"{prefix}[{index}]" if prefix else f"[{index}]")
            for index, item in enumerate(detail)
            if item
        )
    return f"{prefix}: {detail}" if prefix else str(detail)
