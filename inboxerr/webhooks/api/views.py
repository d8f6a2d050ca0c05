"""/api/v1/webhooks/: endpoints CRUD, secret rotation, deliveries and replay, plus seed 002's
route aliases. Views parse, call a selector or service, and serialize."""

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inboxerr.api import actor, parse
from inboxerr.errors import InvalidInput, NotFound
from inboxerr.openapi import error_response
from inboxerr.webhooks import selectors, services
from inboxerr.webhooks.api import serializers as s
from inboxerr.webhooks.models import WebhookDelivery

TAG = ["webhooks"]
VIEW = ["webhooks.view_webhookendpoint"]
ADD = ["webhooks.add_webhookendpoint"]
CHANGE = ["webhooks.change_webhookendpoint"]
DELETE = ["webhooks.delete_webhookendpoint"]
NOT_FOUND = error_response("No such endpoint (or not yours)")
SEED_STATUSES = ["active", "inactive"]


def _created(request: Request) -> Response:
    data = parse(s.EndpointWriteSerializer, request.data)
    endpoint = services.endpoint_create(actor=actor(request), owner=request.user, **data)
    return Response(s.EndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


def _list(request: Request) -> Response:
    return Response(s.EndpointSerializer(selectors.endpoints_for_user(request.user), many=True).data)


class EndpointListView(APIView):
    required_perms = {"GET": VIEW, "POST": ADD}

    @extend_schema(tags=TAG, responses=s.EndpointSerializer(many=True))
    def get(self, request: Request) -> Response:
        """Every webhook endpoint you own (secrets are never listed)."""
        return _list(request)

    @extend_schema(tags=TAG, request=s.EndpointWriteSerializer, responses={201: s.EndpointWithSecretSerializer})
    def post(self, request: Request) -> Response:
        """Register an endpoint; the signing secret is in this response and never shown again."""
        return _created(request)


class EndpointDetailView(APIView):
    required_perms = {"GET": VIEW, "PUT": CHANGE, "PATCH": CHANGE, "DELETE": DELETE}

    @extend_schema(tags=TAG, responses={200: s.EndpointSerializer, 404: NOT_FOUND})
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(s.EndpointSerializer(selectors.endpoint_get(user=request.user, endpoint_id=endpoint_id)).data)

    @extend_schema(tags=TAG, request=s.EndpointWriteSerializer, responses={200: s.EndpointSerializer, 404: NOT_FOUND})
    def put(self, request: Request, endpoint_id: int) -> Response:
        """Replace url, events and is_active."""
        return self._update(request, endpoint_id, parse(s.EndpointWriteSerializer, request.data))

    @extend_schema(tags=TAG, request=s.EndpointPatchSerializer, responses={200: s.EndpointSerializer, 404: NOT_FOUND})
    def patch(self, request: Request, endpoint_id: int) -> Response:
        """Change some of url, events and is_active (reactivating clears the disabled reason)."""
        return self._update(request, endpoint_id, parse(s.EndpointPatchSerializer, request.data))

    @extend_schema(tags=TAG, responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, endpoint_id: int) -> Response:
        endpoint = selectors.endpoint_get(user=request.user, endpoint_id=endpoint_id)
        services.endpoint_delete(actor=actor(request), endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request: Request, endpoint_id: int, data: dict) -> Response:
        endpoint = selectors.endpoint_get(user=request.user, endpoint_id=endpoint_id)
        endpoint = services.endpoint_update(actor=actor(request), endpoint=endpoint, data=data)
        return Response(s.EndpointSerializer(endpoint).data)


class RotateSecretView(APIView):
    required_perms = {"POST": CHANGE}

    @extend_schema(tags=TAG, request=None, responses={200: s.EndpointWithSecretSerializer, 404: NOT_FOUND})
    def post(self, request: Request, endpoint_id: int) -> Response:
        """New signing secret (shown once); the old one keeps signing alongside it for a while."""
        endpoint = selectors.endpoint_get(user=request.user, endpoint_id=endpoint_id)
        endpoint = services.endpoint_rotate_secret(actor=actor(request), endpoint=endpoint)
        return Response(s.EndpointWithSecretSerializer(endpoint).data)


class DeliveryListView(ListAPIView):
    """A list view, so that the schema declares the paginated object it answers (count, next,
    previous, results), not a bare array."""

    required_perms = {"GET": VIEW}
    serializer_class = s.DeliverySerializer

    @extend_schema(tags=TAG, responses={200: s.DeliverySerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, *args, **kwargs) -> Response:
        """The endpoint's deliveries, newest first, paginated."""
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return WebhookDelivery.objects.none()
        endpoint = selectors.endpoint_get(user=self.request.user, endpoint_id=self.kwargs["endpoint_id"])
        return endpoint.deliveries.all()


class DeliveryReplayView(APIView):
    required_perms = {"POST": CHANGE}

    @extend_schema(
        tags=TAG, request=None,
        responses={202: s.DeliverySerializer, 404: error_response("No such delivery (or not yours)"),
                   409: error_response("The endpoint is disabled")},
    )
    def post(self, request: Request, delivery_id: int) -> Response:
        """Send a delivery again, with the same webhook id."""
        delivery = selectors.delivery_get(user=request.user, delivery_id=delivery_id)
        delivery = services.delivery_replay(actor=actor(request), delivery=delivery)
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


# --- seed 002's route aliases ---------------------------------------------------------------------


class SeedCreateView(APIView):
    required_perms = {"POST": ADD}

    @extend_schema(tags=TAG, operation_id="webhooks_seed_create", request=s.EndpointWriteSerializer,
                   responses={201: s.EndpointWithSecretSerializer})
    def post(self, request: Request) -> Response:
        """Seed alias of POST /api/v1/webhooks/."""
        return _created(request)


class SeedGetAllView(APIView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=TAG, operation_id="webhooks_seed_getall", responses=s.EndpointSerializer(many=True))
    def get(self, request: Request) -> Response:
        """Seed alias of GET /api/v1/webhooks/."""
        return _list(request)


class SeedUpdateStatusView(APIView):
    required_perms = {"PUT": CHANGE}

    @extend_schema(tags=TAG, operation_id="webhooks_seed_update_status", request=None,
                   parameters=[OpenApiParameter("status", str, OpenApiParameter.PATH, enum=SEED_STATUSES)],
                   responses={200: s.EndpointSerializer, 400: error_response("status is not active or inactive"),
                              404: NOT_FOUND})
    def put(self, request: Request, endpoint_id: int, status: str) -> Response:  # noqa: A002 (seed's name)
        """Seed alias: activate or deactivate an endpoint (`status` is active or inactive)."""
        if status not in SEED_STATUSES:
            raise InvalidInput("status must be 'active' or 'inactive'", field="status")
        endpoint = selectors.endpoint_get(user=request.user, endpoint_id=endpoint_id)
        endpoint = services.endpoint_update(
            actor=actor(request), endpoint=endpoint, data={"is_active": status == "active"}
        )
        return Response(s.EndpointSerializer(endpoint).data)


class SeedDeleteByUrlView(APIView):
    required_perms = {"DELETE": DELETE}

    @extend_schema(tags=TAG, operation_id="webhooks_seed_delete_by_url",
                   responses={200: s.DeletedSerializer, 404: error_response("You have no endpoint with that URL")})
    def delete(self, request: Request, url: str) -> Response:
        """Seed alias: delete your endpoints with this URL (URL-encoded in the path)."""
        # Own endpoints only, even for a superuser: a URL is not a unique key across owners.
        endpoints = list(selectors.endpoints_for_user(request.user).filter(owner=request.user, url=url))
        if not endpoints:
            raise NotFound("You have no webhook endpoint with that URL", field="url")
        with transaction.atomic():
            for endpoint in endpoints:
                services.endpoint_delete(actor=actor(request), endpoint=endpoint)
        return Response({"deleted": len(endpoints)})
