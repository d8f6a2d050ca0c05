"""JSON parsers that refuse what the standard one lets through silently: a key given twice in one
object (the last would win without a word), NaN and Infinity, nesting too deep for Python; and,
for every API route but the batch API (which checks each item itself and names it), text that
PostgreSQL cannot store: NUL characters and lone surrogates, refused with the path of the value
instead of failing at the database."""

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key '{key}' in one object")
        result[key] = value
    return result


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(stream.read().decode(encoding), object_pairs_hook=_no_duplicate_keys,
                              parse_constant=_refuse_constant)
        except RecursionError:  # the json module gives up on deep nesting with RecursionError
            raise ParseError("JSON parse error: the body is nested too deeply") from None
        except UnicodeDecodeError:
            raise ParseError(f"JSON parse error: the body is not valid {encoding}") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error: {exc}") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _unstorable(text: str) -> str:
    """Why PostgreSQL cannot store this text, or ''."""
    if "\x00" in text:
        return "NUL characters are not allowed"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "lone surrogates (invalid Unicode) are not allowed"
    return ""


def unstorable_text(data: object) -> tuple[str, str] | None:
    """(path, reason) of the first key or string value in `data` PostgreSQL cannot store, or None.
    Iterative: the parser has already bounded the nesting, this walk adds no recursion of its own."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            reason = _unstorable(value)
            if reason:
                return path or "body", reason
        elif isinstance(value, dict):
            for key, item in value.items():
                inner = f"{path}.{key}" if path else str(key)
                reason = _unstorable(key)
                if reason:
                    return inner, f"the key: {reason}"
                stack.append((inner, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return None


class StorableJSONParser(StrictJSONParser):
    """The API's default parser: strict JSON whose text PostgreSQL can store."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        found = unstorable_text(data)
        if found:
            raise ParseError(f"{found[0]}: {found[1]}")
        return data
