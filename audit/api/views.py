from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.api.serializers import AuditLogPageSerializer, AuditLogParamsSerializer, AuditLogSerializer
from audit.selectors import audit_log_page
from inboxerr.api import parse


class AuditLogsView(APIView):
    required_perms = {"GET": ["audit.view_auditlog"]}

    @extend_schema(tags=["audit"], parameters=[AuditLogParamsSerializer], responses=AuditLogPageSerializer)
    def get(self, request: Request) -> Response:
        """The audit trail, newest first, filtered by entity type, action and date range."""
        params = parse(AuditLogParamsSerializer, request.query_params)
        page = audit_log_page(user=request.user, **params)
        page["logs"] = AuditLogSerializer(page["logs"], many=True).data
        return Response(page)
