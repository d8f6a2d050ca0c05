"""The subscribers API of seed 000 under /api/v1/subscribers/. Views parse, call one service or
selector, and shape the output; the rules live in services.py and selectors.py."""

from django.http import StreamingHttpResponse
from django.utils.text import slugify
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inboxerr.api import actor, parse
from inboxerr.openapi import error_response
from inboxerr.csvsafe import csv_lines
from inboxerr.middleware import BodyLimit
from subscribers import selectors, services
from subscribers.api import serializers as s
from subscribers.models import Suppression

TAG = ["subscribers"]
VIEW_SUBSCRIBER = ["subscribers.view_subscriber"]


class ListsView(APIView):
    required_perms = {"GET": ["subscribers.view_subscriberlist"], "POST": ["subscribers.add_subscriberlist"]}

    @extend_schema(tags=TAG, parameters=[s.ListsParamsSerializer], responses=s.ListSummarySerializer(many=True))
    def get(self, request: Request) -> Response:
        """Every list with its subscriber count, largest first (`simple=true`: names and counts)."""
        params = parse(s.ListsParamsSerializer, request.query_params)
        return Response(selectors.list_counts(user=request.user, simple=params["simple"]))

    @extend_schema(tags=TAG, request=s.ListCreateSerializer,
                   responses={201: s.ListSummarySerializer, 409: error_response("You already have a list of that name")})
    def post(self, request: Request) -> Response:
        """Create a list explicitly (lists are also created on first use by name)."""
        data = parse(s.ListCreateSerializer, request.data)
        created = services.list_create(actor=actor(request), owner=request.user, **data)
        body = {"id": created.pk, "name": created.name, "count": 0, "description": created.description,
                "key_field": created.key_field, "owner": request.user.username, "created_at": created.created_at}
        return Response(body, status=status.HTTP_201_CREATED)


class ListDetailView(APIView):
    required_perms = {"DELETE": ["subscribers.delete_subscriberlist"]}

    @extend_schema(
        tags=TAG,
        parameters=[s.ListDeleteParamsSerializer],
        responses={200: s.ListDeleteResultSerializer, 409: error_response("Active jobs or a large list without force=true")},
    )
    def delete(self, request: Request, list_name: str) -> Response:
        """Delete a list with seed 000's safety checks (active jobs, large lists need force=true)."""
        params = parse(s.ListDeleteParamsSerializer, request.query_params)
        subscriber_list = selectors.list_get(user=request.user, name=list_name, owner_username=params.get("owner"))
        summary = services.list_delete(
            actor=actor(request), subscriber_list=subscriber_list, force=params["force"], reason=params["reason"]
        )
        return Response(summary)


class ListExportView(APIView):
    required_perms = {"GET": VIEW_SUBSCRIBER}

    @extend_schema(
        tags=TAG,
        parameters=[s.OwnerParamSerializer],
        responses={(200, "text/csv"): OpenApiResponse(description="The list as CSV, every field a column")},
    )
    def get(self, request: Request, list_name: str) -> StreamingHttpResponse:
        """Export a list as CSV, streamed (constant memory at any size)."""
        params = parse(s.OwnerParamSerializer, request.query_params)
        subscriber_list = selectors.list_get(user=request.user, name=list_name, owner_username=params.get("owner"))
        rows = services.list_export(actor=actor(request), subscriber_list=subscriber_list)
        response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
        filename = f"{slugify(subscriber_list.name) or 'list'}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ListPageView(APIView):
    required_perms = {"GET": VIEW_SUBSCRIBER}

    @extend_schema(tags=TAG, parameters=[s.ListPageParamsSerializer], responses=s.ListPageSerializer)
    def get(self, request: Request, list_name: str) -> Response:
        """One page of a list's subscribers, newest first, with optional search."""
        params = parse(s.ListPageParamsSerializer, request.query_params)
        subscriber_list = selectors.list_get(user=request.user, name=list_name, owner_username=params.get("owner"))
        result = selectors.list_subscribers_page(
            subscriber_list=subscriber_list, page=params["page"], limit=params["limit"], search=params["search"]
        )
        result["subscribers"] = s.SubscriberSerializer(result["subscribers"], many=True).data
        return Response(result)


class SearchView(APIView):
    required_perms = {"GET": VIEW_SUBSCRIBER}

    @extend_schema(tags=TAG, parameters=[s.SearchParamsSerializer],
                   responses={200: s.SearchResultSerializer, 404: error_response("No list named list_name (or no such owner)")})
    def get(self, request: Request) -> Response:
        """Search subscribers across lists with filters, sorting and pagination."""
        params = parse(s.SearchParamsSerializer, request.query_params)
        query = selectors.SearchQuery(
            search=params["search"],
            list_name=params.get("list_name") or None,
            status=params.get("status"),
            page=params["page"],
            limit=params["limit"],
            sort_by=params["sort_by"],
            sort_order=params["sort_order"],
            search_mode=params["search_mode"],
            owner_username=params.get("owner"),
        )
        result = selectors.subscriber_search(user=request.user, query=query)
        result["subscribers"] = s.SubscriberSerializer(result["subscribers"], many=True).data
        return Response(result)


class SubscriberCreateView(APIView):
    required_perms = {"POST": ["subscribers.add_subscriber"]}

    @extend_schema(tags=TAG, request=s.SubscriberWriteSerializer, responses={201: s.SubscriberWrittenSerializer, 409: error_response("Already in that list")})
    def post(self, request: Request) -> Response:
        """Add one subscriber to a list (409 if the address is already on it)."""
        data = dict(parse(s.SubscriberWriteSerializer, request.data))
        list_name = data.pop("list")
        subscriber = services.subscriber_create(actor=actor(request), owner=request.user, list_name=list_name, record=data)
        return Response(s.SubscriberWrittenSerializer(subscriber).data, status=status.HTTP_201_CREATED)


class SubscriberDetailView(APIView):
    required_perms = {
        "GET": VIEW_SUBSCRIBER,
        "PUT": ["subscribers.change_subscriber"],
        "DELETE": ["subscribers.delete_subscriber"],
    }

    @extend_schema(tags=TAG, responses=s.SubscriberSerializer)
    def get(self, request: Request, subscriber_id: int) -> Response:
        subscriber = selectors.subscriber_get(user=request.user, subscriber_id=subscriber_id)
        return Response(s.SubscriberSerializer(subscriber).data)

    @extend_schema(tags=TAG, request=s.SubscriberUpdateSerializer, responses={
        200: s.SubscriberUpdatedSerializer, 409: error_response("The address is already on the target list")})
    def put(self, request: Request, subscriber_id: int) -> Response:
        """Update a subscriber's address, list, status or fields (only the fields sent change)."""
        subscriber = selectors.subscriber_get(user=request.user, subscriber_id=subscriber_id)
        data = parse(s.SubscriberUpdateSerializer, request.data)
        updated = services.subscriber_update(actor=actor(request), subscriber=subscriber, data=data)
        return Response(s.SubscriberUpdatedSerializer(
            {"message": "Subscriber updated successfully", "subscriber": updated, "warnings": updated.warnings}
        ).data)

    @extend_schema(tags=TAG, responses={200: s.ActionMessageSerializer})
    def delete(self, request: Request, subscriber_id: int) -> Response:
        subscriber = selectors.subscriber_get(user=request.user, subscriber_id=subscriber_id)
        services.subscriber_delete(actor=actor(request), subscriber=subscriber)
        return Response({"message": "Subscriber deleted successfully"})


class SubscriberStatusView(APIView):
    required_perms = {"PATCH": ["subscribers.change_subscriber"]}

    @extend_schema(tags=TAG, parameters=[s.StatusParamsSerializer], request=None, responses=s.ActionMessageSerializer)
    def patch(self, request: Request, subscriber_id: int) -> Response:
        """Change a subscriber's status; unsubscribed and bounced also suppress the address."""
        subscriber = selectors.subscriber_get(user=request.user, subscriber_id=subscriber_id)
        source = request.query_params if "status" in request.query_params else request.data
        params = parse(s.StatusParamsSerializer, source)
        services.subscriber_set_status(actor=actor(request), subscriber=subscriber, status=params["status"])
        return Response({"message": f"Subscriber status updated to {params['status']}"})


class BulkView(APIView):
    required_perms = {"POST": ["subscribers.add_subscriber", "subscribers.change_subscriber"]}
    # Up to 10,000 records: an import, with the import's ceiling rather than API_MAX_BODY_BYTES.
    body_limit = BodyLimit("IMPORT_MAX_BYTES")

    @extend_schema(tags=TAG, request=s.BulkSerializer, responses=s.BulkResultSerializer)
    def post(self, request: Request) -> Response:
        """Insert or update up to 10,000 subscribers in one call; bad records are listed by index."""
        data = parse(s.BulkSerializer, request.data)
        result = services.subscribers_bulk_upsert(
            actor=actor(request), owner=request.user, list_name=data["list_name"], records=data["subscribers"]
        )
        return Response(result)


class AnalyzeFieldsView(APIView):
    required_perms = {"POST": VIEW_SUBSCRIBER}

    @extend_schema(tags=TAG, request=s.AnalyzeFieldsSerializer,
                   responses={200: s.AnalyzeFieldsResultSerializer, 404: error_response("One of the lists does not exist")})
    def post(self, request: Request) -> Response:
        """Which fields the chosen lists offer (for merge fields): universal, standard, custom."""
        data = parse(s.AnalyzeFieldsSerializer, request.data)
        return Response(selectors.analyze_fields(user=request.user, list_names=data["listIds"]))


@extend_schema(tags=["suppressions"])
@extend_schema_view(create=extend_schema(
    responses={201: s.SuppressionSerializer, 409: error_response("The address is already suppressed")}))
class SuppressionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Addresses no campaign may message again, whatever list they are on."""

    serializer_class = s.SuppressionSerializer
    required_perms = {
        "GET": ["subscribers.view_suppression"],
        "POST": ["subscribers.add_suppression"],
        "DELETE": ["subscribers.delete_suppression"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Suppression.objects.none()
        qs = selectors.suppressions_for_user(self.request.user)
        channel = self.request.query_params.get("channel")
        address = self.request.query_params.get("address")
        if channel:
            qs = qs.filter(channel=channel)
        if address:
            qs = qs.filter(address__istartswith=address.strip())
        return qs

    # **kwargs: the router's second address (/suppressions.json) passes `format` along.
    def create(self, request: Request, **kwargs) -> Response:
        data = parse(s.SuppressionSerializer, request.data)
        suppression = services.suppression_create(actor=actor(request), owner=request.user, **data)
        return Response(s.SuppressionSerializer(suppression).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance) -> None:
        services.suppression_delete(actor=actor(self.request), suppression=instance)
