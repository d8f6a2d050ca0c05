"""A JSON parser that refuses what the standard one lets through silently: a key given twice in
one object (the last would win without a word)."""

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
