"""Small pieces every API view uses."""

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.request import Request

from inboxerr.actors import Actor


def parse(serializer_class: type[serializers.Serializer], data: object) -> dict:
    """Validate query parameters or a body with a serializer; a 400 names every bad field."""
    return validated(serializer_class(data=data))


def validated(serializer: serializers.Serializer) -> dict:
    """The serializer's validated data, its input held to the types the schema declares."""
    data = serializer.initial_data
    wrong = blank_parameter_errors(serializer, data) if isinstance(data, QueryDict) else json_type_errors(serializer, data)
    if wrong:
        raise serializers.ValidationError(wrong)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def blank_parameter_errors(serializer: serializers.Serializer, params: QueryDict) -> dict | None:
    """`?start_date=` is not a date, `?status=` none of the statuses: DRF reads an empty query
    parameter (or form field) as one left out, which the schema does not say; it is refused,
    naming it. Only text that allows blank takes an empty value (and treats it as absent)."""
    errors = {}
    for name, field in serializer.fields.items():
        if params.get(name, None) == "" and not (isinstance(field, serializers.CharField) and field.allow_blank):
            errors[name] = ["must not be empty (leave the parameter out instead)"]
    return errors or None


# DRF coerces: 0 becomes "0" in a CharField, "1" or 1 becomes True in a BooleanField, 7 a UUID.
# A JSON body whose value has another type than the schema declares is refused instead, naming the
# field, so that the schema is the whole truth about what a body may hold.
_JSON_TYPES: list[tuple[type, tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.DecimalField, (int, float, str), "a number"),
    (serializers.CharField, (str,), "a string"),
    (serializers.UUIDField, (str,), "a string (a UUID)"),
    (serializers.DateTimeField, (str,), "a string (a date-time)"),
    (serializers.DateField, (str,), "a string (a date)"),
    (serializers.MultipleChoiceField, (list,), "an array"),
    (serializers.ListField, (list,), "an array"),
    (serializers.DictField, (dict,), "an object"),
]


def json_type_errors(field: serializers.Field, value: object) -> dict | list | None:
    """{name: message} (nested like the body) for each value whose JSON type the field does not
    declare; None when every value has the right type. Only JSON bodies are checked: query
    strings and forms carry text, which the fields read as usual."""
    if isinstance(value, QueryDict) or value is None:  # text to read, or null (allow_null decides)
        return None
    if isinstance(field, serializers.ListSerializer):
        return _list_errors(field.child, value)
    if isinstance(field, serializers.Serializer):
        if not isinstance(value, dict):
            return None  # DRF's own message ("expected a dictionary") names it
        errors = {}
        for name, child in field.fields.items():
            if not child.read_only and child.source != "*" and name in value:
                wrong = json_type_errors(child, value[name])
                if wrong:
                    errors[name] = wrong
        return errors or None
    for field_class, types, label in _JSON_TYPES:
        if isinstance(field, field_class):
            if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
                return [f"must be {label}, not {_json_type(value)}"]
            break
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return _list_errors(field.child, value)
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        errors = {key: wrong for key, item in value.items() if (wrong := json_type_errors(field.child, item))}
        return errors or None
    if isinstance(field, serializers.ChoiceField) and not isinstance(field, serializers.MultipleChoiceField):
        choice_types = {type(choice) for choice in field.choices}
        if choice_types and not isinstance(value, tuple(choice_types)):
            return [f"must be one of {', '.join(map(str, field.choices))}, not {_json_type(value)}"]
    return None


def _list_errors(child: serializers.Field, value: object) -> dict | None:
    if not isinstance(value, list):
        return None
    errors = {index: wrong for index, item in enumerate(value) if (wrong := json_type_errors(child, item))}
    return errors or None


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def actor(request: Request) -> Actor:
    return Actor.from_request(request, source="api")
