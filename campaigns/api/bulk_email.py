"""Seed 004's bulk email API under /api/v1/bulk-email/. Views parse, call one service or
selector in campaigns.bulk_email, and shape the seed's `{"success": ...}` bodies; errors keep
the project's JSON shape with `"success": false` added."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import bulk_email
from inboxerr.api import actor, parse
from inboxerr.exceptions import exception_handler_adding
from inboxerr.openapi import error_response, given, states_rule

TAG = ["bulk-email"]
SEND = ["campaigns.send_bulk_email"]
VIEW = ["campaigns.view_campaign"]
MAX_IDS = 10_000


_RECIPIENT_ARRAYS = ("emails", "subscriber_ids", "instructor_ids", "list_names")


@states_rule("At least one recipient: one of emails, subscriber_ids, instructor_ids and list_names not empty.",
             anyOf=[given(name, {"type": "array", "minItems": 1}) for name in _RECIPIENT_ARRAYS])
class SendRemindersSerializer(serializers.Serializer):
    emails = serializers.ListField(child=serializers.CharField(max_length=320), required=False, default=list,
                                   max_length=MAX_IDS)
    subscriber_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list,
                                           max_length=MAX_IDS)
    instructor_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list,
                                           max_length=MAX_IDS, help_text="Seed 004's name for subscriber_ids.")
    list_names = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list,
                                       max_length=100)
    personal_message = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="",
                                             max_length=5000)
    term = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="", max_length=200)
    deadline = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="", max_length=200)
    template_id = serializers.IntegerField(required=False, allow_null=True,
                                           help_text="An active email template of yours; default: the built-in reminder.")


class RecentJobsParamsSerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, default=bulk_email.RECENT_JOBS_DEFAULT,
                                     help_text=f"At most {bulk_email.RECENT_JOBS_MAX}; more is capped.")


_JOB = inline_serializer("BulkEmailJob", {
    "id": serializers.UUIDField(), "job_type": serializers.CharField(),
    "status": serializers.ChoiceField(choices=bulk_email.JobStatus.choices),
    "recipient_count": serializers.IntegerField(), "emails_sent": serializers.IntegerField(),
    "emails_failed": serializers.IntegerField(), "emails_pending": serializers.IntegerField(),
    "progress_percentage": serializers.IntegerField(), "created_at": serializers.DateTimeField(),
    "started_at": serializers.DateTimeField(allow_null=True), "completed_at": serializers.DateTimeField(allow_null=True),
    "personal_message": serializers.CharField(allow_null=True),
    "failed_recipients": serializers.ListField(child=serializers.DictField()),
    "error_message": serializers.CharField(allow_null=True),
})
_JOB_RESPONSE = inline_serializer("BulkEmailJobResponse", {"success": serializers.BooleanField(), "job": _JOB})


class BulkEmailView(APIView):
    error_fields = {"success": False}  # also in the refusals of BodyLimitMiddleware

    def get_exception_handler(self):
        return _exception_handler


_exception_handler = exception_handler_adding(**BulkEmailView.error_fields)


class SendRemindersView(BulkEmailView):
    required_perms = {"POST": SEND}

    @extend_schema(tags=TAG, request=SendRemindersSerializer, responses={202: inline_serializer("BulkEmailStarted", {
        "success": serializers.BooleanField(), "job_id": serializers.UUIDField(), "message": serializers.CharField(),
        "recipient_count": serializers.IntegerField()})})
    def post(self, request: Request) -> Response:
        """Start a reminder job to emails, subscriber ids and/or lists; answers 202 at once and
        the dispatcher sends it. Suppressed and unsubscribed addresses are skipped."""
        data = parse(SendRemindersSerializer, request.data)
        job = bulk_email.bulk_reminder_start(
            actor=actor(request), owner=request.user, emails=data["emails"],
            subscriber_ids=data["subscriber_ids"] + data["instructor_ids"], list_names=data["list_names"],
            personal_message=data["personal_message"] or "", term=data["term"] or "",
            deadline=data["deadline"] or "", template_id=data.get("template_id"),
        )
        recipients = bulk_email.job_figures(job)["recipient_count"]
        message = "Bulk reminder job started"
        if job.skipped_count:
            message += f" ({job.skipped_count} recipients skipped: suppressed, unsubscribed or without an address)"
        body = {"success": True, "job_id": str(job.pk), "message": message, "recipient_count": recipients}
        return Response(body, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"/api/v1/bulk-email/job-status/{job.pk}"})


class JobStatusView(BulkEmailView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=TAG, responses=_JOB_RESPONSE)
    def get(self, request: Request, job_id: str) -> Response:
        """A job's progress: sent, failed and pending counts, and each failed recipient's error."""
        return Response({"success": True, "job": bulk_email.bulk_job_status(user=request.user, job_id=job_id)})


class RecentJobsView(BulkEmailView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=TAG, parameters=[RecentJobsParamsSerializer], responses=inline_serializer("BulkEmailJobs", {
        "success": serializers.BooleanField(), "jobs": serializers.ListField(child=_JOB),
        "total": serializers.IntegerField()}))
    def get(self, request: Request) -> Response:
        """The newest jobs first; `total` counts all of them."""
        params = parse(RecentJobsParamsSerializer, request.query_params)
        jobs, total = bulk_email.bulk_recent_jobs(user=request.user, limit=params["limit"])
        return Response({"success": True, "jobs": jobs, "total": total})


class JobCancelView(BulkEmailView):
    required_perms = {"POST": SEND}

    @extend_schema(tags=TAG, request=None,
                   responses={200: _JOB_RESPONSE, 409: error_response("The job has finished or was cancelled")})
    def post(self, request: Request, job_id: str) -> Response:
        """Cancel a job: its queued messages are not sent; a finished job answers 409."""
        job = bulk_email.bulk_job_get(user=request.user, job_id=job_id)
        bulk_email.bulk_job_cancel(actor=actor(request), job=job)
        return Response({"success": True, "job": bulk_email.bulk_job_status(user=request.user, job_id=job.pk)})
