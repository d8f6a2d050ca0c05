"""Small pieces every API view uses."""

from rest_framework import serializers
from rest_framework.request import Request

from inboxerr.actors import Actor


def parse(serializer_class: type[serializers.Serializer], data: object) -> dict:
    """Validate query parameters or a body with a serializer; a 400 names every bad field."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def actor(request: Request) -> Actor:
    return Actor.from_request(request, source="api")
