"""Import endpoints: /api/v1/imports/ (seed 001) and the job routes of seed 000 under
/api/v1/subscribers/. Views parse, call one service or selector, and shape the output."""

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imports import selectors, services
from imports.api import serializers as s
from imports.models import ImportRowError
from imports.rows import error_columns
from imports.upload import UPLOAD_BODY_LIMIT, UPLOAD_FIELD, ImportUploadHandler, StoredUpload
from inboxerr.api import actor, parse
from inboxerr.errors import InvalidInput, ServiceError
from inboxerr.middleware import BodyLimit
from inboxerr.openapi import error_response
from subscribers.api.serializers import SubscriberSerializer
from inboxerr.csvsafe import csv_lines, safe_cell
from subscribers.models import Subscriber

TAG = ["imports"]
VIEW = ["imports.view_importjob"]
CHANGE = ["imports.change_importjob"]


class PayloadTooLarge(ServiceError):
    status_code = 413


def _accepted(job) -> Response:
    body = {
        "import_id": str(job.pk),
        "job_id": str(job.pk),
        "status": job.status,
        "sha256": job.sha256,
        "list_name": job.list_name,
        "filename": job.filename,
        "size_bytes": job.size_bytes,
        "message": "Import queued",
    }
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/imports/{job.pk}"})


class ImportCsvView(APIView):
    required_perms = {"POST": ["imports.add_importjob"]}
    parser_classes = [MultiPartParser, FormParser]
    body_limit = UPLOAD_BODY_LIMIT

    def initialize_request(self, request, *args, **kwargs):
        # Before anything reads the body: the file streams to IMPORT_DIR, hashed on the way.
        if request.method == "POST":
            self.upload_handler = ImportUploadHandler(request)
            request.upload_handlers = [self.upload_handler]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        tags=TAG,
        request={"multipart/form-data": s.ImportCsvSerializer},
        responses={202: s.ImportAcceptedSerializer, 409: error_response("Same file already imported into this list"),
                   413: error_response("Over IMPORT_MAX_BYTES")},
    )
    def post(self, request: Request) -> Response:
        """Upload a CSV into a list; answers 202 with the job at once, the import runs on a worker."""
        handler = getattr(self, "upload_handler", None)
        upload = request.FILES.get(UPLOAD_FIELD)
        if handler is not None and handler.too_large:
            raise PayloadTooLarge(f"file: larger than the limit of {settings.IMPORT_MAX_BYTES:,} bytes", field="file")
        if not isinstance(upload, StoredUpload):
            raise InvalidInput("file: a CSV file is required (multipart field 'file')", field="file")
        try:
            data = parse(s.ImportCsvSerializer, request.data)
        except Exception:
            services.discard_stored(upload.stored)
            raise
        job = services.import_create(
            actor=actor(request),
            owner=request.user,
            list_name=data["list_name"],
            stored=upload.stored,
            key_field=data.get("key_field"),
            mapping=data.get("mapping"),
            keep_raw=data.get("keep_raw"),
            update_existing=data["update_existing"],
            force=data["force"],
        )
        return _accepted(job)


class ImportJobListView(ListAPIView):
    required_perms = {"GET": VIEW}
    serializer_class = s.ImportJobSerializer

    @extend_schema(tags=TAG, parameters=[s.ImportListParamsSerializer])
    def get(self, request: Request, *args, **kwargs) -> Response:
        """Import jobs, newest first."""
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = parse(s.ImportListParamsSerializer, self.request.query_params)
        qs = selectors.jobs_for_user(self.request.user).order_by("-created_at")
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        if params.get("list_name"):
            qs = qs.filter(list_name=params["list_name"])
        return qs


class ImportJobDetailView(APIView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=TAG, responses=s.ImportJobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        """Progress of one import: status, counts, sha256, rows per second, ETA."""
        job = selectors.job_get(user=request.user, job_id=job_id)
        return Response(s.ImportJobSerializer(job).data)


class ImportContactsView(ListAPIView):
    """Subscribers this import wrote (created or changed), newest first; a paginated preview."""

    required_perms = {"GET": VIEW + ["subscribers.view_subscriber"]}
    serializer_class = SubscriberSerializer

    @extend_schema(tags=TAG)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        job = selectors.job_get(user=self.request.user, job_id=self.kwargs["job_id"])
        return Subscriber.objects.filter(import_job=job).select_related("list").order_by("id")


class ImportErrorsView(APIView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=TAG, responses={(200, "text/csv"): OpenApiResponse(
        description="row, kind (`error`: the row was not imported; `warning`: it was, without the column named), "
                    "column, reason, then the row's original columns; a last line of kind `truncated` when the "
                    "report holds only the first IMPORT_MAX_STORED_ERRORS lines")})
    def get(self, request: Request, job_id: str) -> StreamingHttpResponse:
        """The import's report as CSV: invalid rows and warnings, each with the row as it was."""
        job = selectors.job_get(user=request.user, job_id=job_id)
        columns = error_columns((job.options or {}).get("header", []))
        rows = ImportRowError.objects.filter(job=job).order_by("row", "id").values_list(
            "row", "kind", "column", "reason", "values"
        )

        def report():
            # Header cells come from the file too, so they are neutralised like the values.
            yield ["row", "kind", "column", "reason", *map(safe_cell, columns)] if columns else \
                ["row", "kind", "column", "reason", "values"]
            for row, kind, column, reason, values in rows.iterator(chunk_size=2000):
                first = [row, kind, safe_cell(column), safe_cell(reason)]
                if columns:
                    cells = [values.get(c, "") for c in columns] + [v for k, v in values.items() if k not in columns]
                    yield [*first, *map(safe_cell, cells)]
                else:
                    yield [*first, safe_cell(str(values))]
            if selectors.report_truncated(job):
                yield ["", "truncated", "", selectors.truncation_note(job)]

        # People open this report in a spreadsheet, so it starts with a BOM (see csv_lines).
        response = StreamingHttpResponse(csv_lines(report(), bom=True), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        return response


class ImportCancelView(APIView):
    required_perms = {"POST": CHANGE}

    @extend_schema(tags=TAG, request=None,
                   responses={200: s.ImportJobSerializer, 409: error_response("The job is no longer pending or running")})
    def post(self, request: Request, job_id: str) -> Response:
        """Cancel a pending or running import; rows of chunks already committed stay."""
        job = selectors.job_get(user=request.user, job_id=job_id)
        job = services.import_cancel(actor=actor(request), job=job)
        return Response(s.ImportJobSerializer(job).data)


# --- Seed 000 job routes under /api/v1/subscribers/ -------------------------------------------


class BackgroundUploadView(APIView):
    required_perms = {"POST": ["imports.add_importjob"]}
    # The records are an import: the same ceiling as the CSV file that would carry them.
    body_limit = BodyLimit("IMPORT_MAX_BYTES")

    @extend_schema(tags=["subscribers"], request=s.BackgroundUploadSerializer, responses={
        202: s.ImportAcceptedSerializer, 409: error_response("The same records were already imported into this list")})
    def post(self, request: Request) -> Response:
        """Seed 000 background upload: records go to a job on the import pipeline."""
        data = parse(s.BackgroundUploadSerializer, request.data)
        job = services.import_create_from_records(
            actor=actor(request), owner=request.user, list_name=data["list_name"], records=data["subscribers"]
        )
        return _accepted(job)


class JobsStatusView(APIView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=["subscribers"], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """The latest 50 jobs with statistics and display figures (seed 000)."""
        jobs = selectors.jobs_for_user(request.user).order_by("-created_at")[:50]
        return Response({"jobs": [selectors.job_status_entry(job) for job in jobs]})


class JobsCleanupStuckView(APIView):
    required_perms = {"POST": CHANGE}

    @extend_schema(tags=["subscribers"], request=None, responses=s.CleanupResultSerializer)
    def post(self, request: Request) -> Response:
        """Mark stuck jobs failed (their files stay for a retry)."""
        return Response(services.imports_cleanup_stuck(actor=actor(request), jobs=selectors.jobs_for_user(request.user)))


class JobForceRetryView(APIView):
    required_perms = {"POST": CHANGE}

    @extend_schema(tags=["subscribers"], request=None, responses={
        200: s.ForceRetryResultSerializer, 409: error_response("The job has not failed or stuck, or its file is gone")})
    def post(self, request: Request, job_id: str) -> Response:
        """Retry a failed job from its checkpoint."""
        job = selectors.job_get(user=request.user, job_id=job_id)
        job = services.import_force_retry(actor=actor(request), job=job)
        return Response({"message": "Job retry initiated", "job_id": str(job.pk), "retry_count": job.retry_count})


class JobsClearAllView(APIView):
    required_perms = {"DELETE": ["imports.delete_importjob"]}

    @extend_schema(tags=["subscribers"], responses={200: s.ClearResultSerializer})
    def delete(self, request: Request) -> Response:
        """Delete the records of finished jobs (subscribers stay)."""
        return Response(services.jobs_clear(actor=actor(request), jobs=selectors.jobs_for_user(request.user)))


class UploadQueueStatusView(APIView):
    required_perms = {"GET": VIEW}

    @extend_schema(tags=["subscribers"], responses=s.QueueStatusSerializer)
    def get(self, request: Request) -> Response:
        """Counts of queued, processing and finished uploads."""
        return Response(services.upload_queue_status(jobs=selectors.jobs_for_user(request.user)))


class UploadQueueRetryView(APIView):
    required_perms = {"POST": CHANGE}

    @extend_schema(tags=["subscribers"], request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        """Retry failed uploads that still have their file, and requeue stuck ones."""
        return Response(services.imports_retry_failed(actor=actor(request), jobs=selectors.jobs_for_user(request.user)))
