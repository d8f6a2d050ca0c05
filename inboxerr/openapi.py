"""The API's error contract in the OpenAPI schema: one `Error` component, and every status code an
operation can answer declared with it.

Views declare what is particular to them (`error_response`: a 409 for a conflict, a 404 for an
object that is not there); `add_error_responses` adds what every operation can answer because of
where it stands: 400 for parameters or a body that do not validate, 401/403 for a caller without
credentials or permission, 406 for an Accept header the API cannot produce, 429 when throttled,
404 for an id in the path that names nothing of yours, and 413/415 for a body too large or not of
a declared type.

Rules across fields that a service enforces (one of two fields, at least one of several) are stated
on the request component with `anyOf`/`oneOf` (`states_rule`), so that a body the API refuses for
them is one the schema refuses too.
"""

from collections.abc import Callable

from drf_spectacular.utils import OpenApiResponse

ERROR_REF = {"$ref": "#/components/schemas/Error"}

ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Every 4xx and 5xx answer under /api/ has this shape. Some APIs add keys of their own for "
        "their clients: the batch API `\"status\": \"error\"`, the bulk email API `\"success\": false`; "
        "a conflict may name what it conflicts with (`id`, `import_id`, ...)."
    ),
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string",
                   "description": "What went wrong, in one readable line naming the field or item at fault."},
        "field": {"type": "string", "description": "The field, parameter or `body` at fault, when there is one."},
        "errors": {
            "description": "Every bad field (name -> messages, nested as the body is), or every bad item by index.",
            "oneOf": [
                {"type": "object", "additionalProperties": True},
                {"type": "array", "items": {"type": "object", "properties": {
                    "index": {"type": "integer"}, "field": {"type": "string"}, "message": {"type": "string"}}}},
            ],
        },
    },
}


_CLOSED: set[str] = set()


def refuses_unknown_fields(serializer_class: type) -> type:
    """Class decorator for an input serializer whose view refuses fields it does not declare:
    its request schema then says so (`additionalProperties: false`)."""
    _CLOSED.add(serializer_class.__name__.removesuffix("Serializer"))
    return serializer_class


# Text that is not blank once trimmed: at least one character that Python's str.strip() (which DRF
# and the services trim with) keeps. Spelled out rather than `\S`, which JSON Schema validators read
# with differing ideas of whitespace (ECMA 262, Python and Rust regexes each differ).
NOT_BLANK = {
    "type": "string",
    "pattern": "[^\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]",
}


def given(name: str, schema: dict | None = None, title: str = "") -> dict:
    """A variant of `anyOf`/`oneOf`: the body has `name`, and its value is held to `schema` (on top
    of what the property itself declares)."""
    variant = {"title": title or f"with {name}", "required": [name]}
    if schema:
        variant["properties"] = {name: schema}
    return variant


_RULES: dict[str, tuple[str, dict]] = {}


def states_rule(rule: str, **keywords) -> Callable[[type], type]:
    """Class decorator for an input serializer whose service enforces a rule across fields: the
    request component gets `keywords` (`anyOf=[given(...), ...]` or `oneOf=...`), and `rule`, in
    words, at the end of its description for the reader of /docs."""

    def decorate(serializer_class: type) -> type:
        _RULES[serializer_class.__name__.removesuffix("Serializer")] = (rule, keywords)
        return serializer_class

    return decorate


def error_response(description: str) -> OpenApiResponse:
    """An error a view declares itself: `responses={409: error_response("Already on that list")}`."""
    return OpenApiResponse(response=ERROR_REF, description=description)


# The codes added where they apply, with what they mean there.
COMMON = {
    "400": "Invalid parameters or body: `detail` names the field, `errors` lists every bad one.",
    "401": "No valid credentials (an API token or a session).",
    "403": "Authenticated, but without the permission this operation needs.",
    "404": "Nothing of yours has this id (another owner's objects answer 404 too), or no such page.",
    "406": "The Accept header asks for a type the API cannot produce.",
    "413": "The body is larger than this route's limit (API_MAX_BODY_BYTES unless the route has its own).",
    "415": "The body's Content-Type is not one this operation accepts.",
    "429": "Too many requests: try again after the seconds in Retry-After.",
}
_METHODS = ("get", "put", "post", "patch", "delete")


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name in _CLOSED:
        for component in (f"{name}Request", f"Patched{name}Request"):
            if component in schemas:
                schemas[component]["additionalProperties"] = False
    ruled = set()
    for name, (rule, keywords) in _RULES.items():
        component = schemas.get(f"{name}Request")
        if component is not None:
            component.update(keywords)
            component["description"] = f"{component.get('description', '')}\n\n{rule}".strip()
            ruled.add(f"#/components/schemas/{name}Request")
    for path, operations in result.get("paths", {}).items():
        if path.startswith("/api/"):
            for method, operation in operations.items():
                if method in _METHODS:
                    _require_ruled_body(operation, ruled)
                    _declare_errors(operation)
    return result


def _require_ruled_body(operation: dict, ruled: set[str]) -> None:
    """A body held to a rule needs some field, so it cannot be left out: drf-spectacular makes a
    body optional when none of its fields is required on its own."""
    body = operation.get("requestBody")
    if body and any(media.get("schema", {}).get("$ref") in ruled for media in body.get("content", {}).values()):
        body["required"] = True


def _declare_errors(operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    # 400 everywhere: a query string PostgreSQL cannot store (a NUL) is refused on every route.
    # 429 is declared by inboxerr.throttling.document_throttling, on throttled operations only.
    codes = ["400", "401", "403", "406"]
    if any(parameter.get("in") == "path" or parameter.get("name") == "page" for parameter in parameters):
        codes.append("404")  # no such object, or a page past the last
    if "requestBody" in operation:
        codes += ["413", "415"]
    for code in codes:
        responses.setdefault(code, {"description": COMMON[code]})
    for code, response in responses.items():
        if code[0] in "45" and "content" not in response:
            response["content"] = {"application/json": {"schema": ERROR_REF}}
