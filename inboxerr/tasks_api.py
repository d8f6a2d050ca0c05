"""`GET /api/v1/tasks/{id}`: the one tracker for every background job (issue 5, seed 001 item 1).
Mounted with `include("inboxerr.tasks_api")`, hence its own urlpatterns."""

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inboxerr import tracker

_TASK = inline_serializer("Task", {
    "id": serializers.CharField(help_text="A UUID, or a batch's 16-hex batch_id."),
    "kind": serializers.ChoiceField(choices=[tracker.TaskKind.IMPORT, tracker.TaskKind.CAMPAIGN, tracker.TaskKind.BULK_EMAIL,
                                             tracker.TaskKind.BATCH]),
    "status": serializers.CharField(), "progress": serializers.FloatField(), "result": serializers.DictField(),
    "rate": serializers.FloatField(help_text="Rows (imports) or messages (sends) finished per second since the start."),
    "rate_unit": serializers.ChoiceField(choices=["rows", "messages"]),
    "eta_seconds": serializers.FloatField(allow_null=True, help_text="Time left at the current pace, while running."),
    "error": serializers.CharField(allow_null=True), "created_at": serializers.DateTimeField(),
    "updated_at": serializers.DateTimeField(), "started_at": serializers.DateTimeField(allow_null=True),
    "finished_at": serializers.DateTimeField(allow_null=True),
    "links": serializers.DictField(child=serializers.CharField()),
})


class TaskView(APIView):
    # Which model permission applies depends on the kind of task, known only after the lookup.
    required_perms = None

    @extend_schema(tags=["tasks"], responses=_TASK)
    def get(self, request: Request, task_id: str) -> Response:
        """Any background job by the id its 202 gave: an import, a campaign or a bulk email job."""
        task = tracker.task_get(user=request.user, task_id=task_id)
        if not request.user.has_perm(task.permission):
            raise PermissionDenied()
        return Response(task.data)


urlpatterns = [path("<str:task_id>", TaskView.as_view(), name="task-detail")]
