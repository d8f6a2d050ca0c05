"""Templates and campaigns (seed 001). Views parse, call one service or selector, shape output."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.api import serializers as s
from campaigns.models import Message, MessageTemplate
from imports.services import discard_stored
from imports.upload import UPLOAD_BODY_LIMIT, UPLOAD_FIELD, ImportUploadHandler, StoredUpload
from inboxerr.api import actor, parse, validated
from inboxerr.errors import InvalidInput
from inboxerr.openapi import error_response


NAME_TAKEN = error_response("You already have a template of that name")


@extend_schema(tags=["templates"])
@extend_schema_view(
    create=extend_schema(request=s.TemplateCreateSerializer, responses={201: s.TemplateSerializer, 409: NAME_TAKEN}),
    update=extend_schema(responses={200: s.TemplateSerializer, 409: NAME_TAKEN}),
    partial_update=extend_schema(responses={200: s.TemplateSerializer, 409: NAME_TAKEN}),
    destroy=extend_schema(responses={204: None, 409: error_response("Campaigns or unsent batch items use it")}),
)
class TemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Message templates with merge fields; `variables` lists the fields each one uses."""

    serializer_class = s.TemplateSerializer
    required_perms = {
        "GET": ["campaigns.view_messagetemplate"], "POST": ["campaigns.add_messagetemplate"],
        "PUT": ["campaigns.change_messagetemplate"], "PATCH": ["campaigns.change_messagetemplate"],
        "DELETE": ["campaigns.delete_messagetemplate"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return MessageTemplate.objects.none()
        return selectors.templates_for_user(self.request.user).select_related("owner")

    # **kwargs here and below: the router's second addresses (/templates.json, /templates/1.json)
    # pass `format` along.
    def create(self, request: Request, **kwargs) -> Response:
        data = parse(s.TemplateCreateSerializer, request.data)
        template = services.template_create(actor=actor(request), owner=request.user, **data)
        return Response(s.TemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk=None, partial: bool = False, **kwargs) -> Response:
        template = self.get_object()
        data = validated(s.TemplateSerializer(template, data=request.data, partial=partial))
        template = services.template_update(actor=actor(request), template=template, data=data)
        return Response(s.TemplateSerializer(template).data)

    def partial_update(self, request: Request, pk=None, **kwargs) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk=None, **kwargs) -> Response:
        services.template_delete(actor=actor(request), template=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


CAMPAIGN_PERMS = {"GET": ["campaigns.view_campaign"], "POST": ["campaigns.add_campaign"]}
CHANGE = {"POST": ["campaigns.change_campaign"]}


class CampaignListView(APIView):
    required_perms = CAMPAIGN_PERMS

    @extend_schema(tags=["campaigns"], responses=s.CampaignSerializer(many=True))
    def get(self, request: Request) -> Response:
        campaigns = selectors.campaigns_for_user(request.user).prefetch_related("lists")[:200]
        return Response(s.CampaignSerializer(campaigns, many=True).data)

    @extend_schema(tags=["campaigns"], request=s.CampaignCreateSerializer, responses={201: s.CampaignSerializer})
    def post(self, request: Request) -> Response:
        """Create a campaign: exactly one of template_id or message_content, and an audience."""
        data = parse(s.CampaignCreateSerializer, request.data)
        campaign = services.campaign_create(actor=actor(request), owner=request.user, **data)
        return Response(s.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignFromCsvView(APIView):
    required_perms = {"POST": ["campaigns.add_campaign"]}
    parser_classes = [MultiPartParser]
    body_limit = UPLOAD_BODY_LIMIT

    def initialize_request(self, request, *args, **kwargs):
        if request.method == "POST":
            self.upload_handler = ImportUploadHandler(request)
            request.upload_handlers = [self.upload_handler]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(tags=["campaigns"], request={"multipart/form-data": s.CampaignFromCsvSerializer},
                   responses={201: s.CampaignSerializer})
    def post(self, request: Request) -> Response:
        """Create a campaign whose recipients and per-recipient variables come from a CSV."""
        upload = request.FILES.get(UPLOAD_FIELD)
        if getattr(self, "upload_handler", None) and self.upload_handler.too_large:
            raise InvalidInput("file: larger than IMPORT_MAX_BYTES", field="file")
        if not isinstance(upload, StoredUpload):
            raise InvalidInput("file: a CSV file is required (multipart field 'file')", field="file")
        try:
            data = parse(s.CampaignFromCsvSerializer, request.data)
            data.pop("file")
            campaign = services.campaign_create_from_csv(actor=actor(request), owner=request.user, stored=upload.stored, **data)
        finally:
            discard_stored(upload.stored)
        return Response(s.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(APIView):
    required_perms = {"GET": ["campaigns.view_campaign"]}

    @extend_schema(tags=["campaigns"], responses=s.CampaignSerializer)
    def get(self, request: Request, campaign_id: str) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        return Response(s.CampaignSerializer(campaign).data)


def _action(service, code: int = status.HTTP_200_OK, doc: str = ""):
    class ActionView(APIView):
        required_perms = CHANGE

        @extend_schema(tags=["campaigns"], request=None, description=doc, responses={
            code: s.CampaignSerializer, 409: error_response("The campaign's status does not allow this")})
        def post(self, request: Request, campaign_id: str) -> Response:
            campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
            campaign = service(actor=actor(request), campaign=campaign)
            body = s.CampaignSerializer(campaign).data
            if code == status.HTTP_202_ACCEPTED:
                body["task_id"] = str(campaign.pk)
            return Response(body, status=code)

    ActionView.__name__ = f"Campaign{service.__name__.split('_')[-1].capitalize()}View"
    return ActionView.as_view()


campaign_start_view = _action(services.campaign_start, status.HTTP_202_ACCEPTED, "Queue the fan-out; answers 202 at once.")
campaign_pause_view = _action(services.campaign_pause, doc="Stop claiming this campaign's messages.")
campaign_resume_view = _action(services.campaign_resume, doc="Claim its messages again.")
campaign_cancel_view = _action(services.campaign_cancel, doc="Cancel: queued messages are not sent.")
campaign_retry_failed_view = _action(services.campaign_retry_failed, doc="Requeue only the failed messages.")


class CampaignTestSendView(APIView):
    required_perms = CHANGE

    @extend_schema(tags=["campaigns"], request=s.TestSendSerializer, responses=s.TestSendResultSerializer)
    def post(self, request: Request, campaign_id: str) -> Response:
        """Send the campaign once, now, to an address you give (subject prefixed [TEST])."""
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        data = parse(s.TestSendSerializer, request.data)
        return Response(services.campaign_test_send(actor=actor(request), campaign=campaign, recipient=data["recipient"]))


class CampaignPreviewView(APIView):
    required_perms = {"GET": ["campaigns.view_campaign", "subscribers.view_subscriber"]}

    @extend_schema(tags=["campaigns"], parameters=[s.PreviewParamsSerializer], responses=s.PreviewSerializer)
    def get(self, request: Request, campaign_id: str) -> Response:
        """The campaign rendered for one subscriber of its audience."""
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        params = parse(s.PreviewParamsSerializer, request.query_params)
        return Response(services.campaign_preview(campaign=campaign, subscriber_id=params.get("subscriber_id")))


class CampaignDryRunView(APIView):
    required_perms = {"GET": ["campaigns.view_campaign"]}

    @extend_schema(tags=["campaigns"], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, campaign_id: str) -> Response:
        """What a start would queue: audience after dedupe and suppression, missing merge fields."""
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        return Response(services.campaign_dry_run(campaign=campaign))


class CampaignMessagesView(ListAPIView):
    required_perms = {"GET": ["campaigns.view_campaign"]}
    serializer_class = s.MessageSerializer

    @extend_schema(tags=["campaigns"], parameters=[s.MessageListParamsSerializer])
    def get(self, request: Request, *args, **kwargs) -> Response:
        """The campaign's messages, filterable by status, with the last error of each."""
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        campaign = selectors.campaign_get(user=self.request.user, campaign_id=self.kwargs["campaign_id"])
        params = parse(s.MessageListParamsSerializer, self.request.query_params)
        qs = Message.objects.filter(campaign=campaign).order_by("id")
        return qs.filter(status=params["status"]) if params.get("status") else qs
