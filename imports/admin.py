from functools import update_wrapper

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from imports import admin_views, services
from imports.models import ImportJob, import_status_label
from imports.selectors import job_figures
from imports.wording import delimiter_name, encoding_name, target_label
from inboxerr.admin_tools import OwnedAdmin, admin_actor
from inboxerr.errors import ServiceError
from inboxerr.job_pages import Figure, JobControl, JobLink, JobPageMixin

REPEATED = "Repeated in the file"  # the duplicates figure, named the same on every page
IMPORT_FIGURES = (
    Figure("total_rows", "Rows in the file"), Figure("processed_rows", "Rows read"), Figure("created", "Created"),
    Figure("updated", "Updated"), Figure("duplicates", REPEATED), Figure("invalid", "Invalid rows"),
    Figure("warnings", "Fields left out (warnings)"),
)
IMPORT_CONTROLS = (
    JobControl("cancel", "Cancel the import", lambda actor, job: services.import_cancel(actor=actor, job=job),
               when=("pending", "processing", "stuck"), danger=True,
               done="Import cancelled: the rows of the chunks already committed stay."),
    JobControl("retry", "Retry from the checkpoint", lambda actor, job: services.import_force_retry(actor=actor, job=job),
               when=("failed", "stuck"), done="Import queued again; it resumes from its checkpoint."),
)


def _cut(text: str, limit: int = 40) -> str:
    """A long name cut to fit a list column, the whole of it in the tooltip."""
    if len(text) <= limit:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[: limit - 1].rstrip())


def describe_options(job: ImportJob) -> str:
    """How the job reads its source, in words: the encoding and delimiter found, the update rule,
    the key field, and a table of where each column of the file goes (each column once)."""
    options = job.options or {}
    fmt = options.get("format") or {}
    facts = []
    if fmt:
        facts += [("Encoding", encoding_name(fmt.get("encoding", ""))),
                  ("Delimiter", delimiter_name(fmt.get("delimiter", "")))]
    facts += [("Key field", options.get("key_field") or "-"),
              ("Update subscribers already on the list", "yes" if options.get("update_existing", True) else "no")]
    rows = format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", facts)
    columns = options.get("columns") or {}
    header = options.get("header") or list(columns)
    if not columns:
        return format_html('<table class="key-values">{}</table>', rows)
    mapping = format_html_join("", "<tr><td>{}</td><td>{}</td></tr>",
                               ((column or "(no header)", target_label(columns.get(column, "ignore"))) for column in header))
    return format_html(
        '<table class="key-values">{}</table>'
        '<table class="import-columns"><thead><tr><th scope="col">Column in the file</th>'
        '<th scope="col">Goes to</th></tr></thead><tbody>{}</tbody></table>',
        rows, mapping,
    )


@admin.register(ImportJob)
class ImportJobAdmin(JobPageMixin, OwnedAdmin):
    # What an operator scans, narrow enough for 1366 px with the sidebar and filters open: the
    # owner only for superusers (everyone else sees only their own), the progress bar under the
    # status, the repeated rows in its tooltip, everything else on the job's page.
    list_display = ("date_display", "list_name_display", "file_display", "status_display",
                    "created_display", "updated_display", "invalid_display")
    list_display_links = ("date_display",)
    list_select_related = ("owner",)
    list_filter = ("status", "source")
    search_fields = ("=id", "list_name", "filename", "=sha256")
    show_full_result_count = False
    # The counters, status and timings live in the job panel above the form (they update live);
    # the form shows what the job is, in words.
    fields = ("list_link", "filename", "source", "size_display", "sha256_display", "owner", "created_at",
              "retry_count", "crash_count", "options_display")
    readonly_fields = fields
    actions = ("cancel_jobs", "retry_jobs", "cleanup_stuck", "clear_finished")
    change_form_template = "admin/imports/importjob/change_form.html"
    change_list_template = "admin/imports/importjob/change_list.html"

    def get_urls(self):
        wizard = [
            path("import/", self._admin_view(admin_views.choose_list_view), name="imports_importjob_import"),
            path("upload/", self._admin_view(admin_views.upload_view), name="imports_importjob_upload"),
            path("upload/<slug:token>/", self._admin_view(admin_views.mapping_view), name="imports_importjob_mapping"),
            path("upload/<slug:token>/options/", self._admin_view(admin_views.options_view),
                 name="imports_importjob_options"),
            path("upload/<slug:token>/discard/", self._admin_view(admin_views.discard_view),
                 name="imports_importjob_discard"),
        ]
        return wizard + super().get_urls()

    def get_list_display(self, request: HttpRequest):
        if not request.user.is_superuser:
            return self.list_display
        at = self.list_display.index("list_name_display") + 1
        return (*self.list_display[:at], "owner", *self.list_display[at:])

    def _admin_view(self, view):
        """admin_view over a wizard view bound to this admin. The binding carries the view's own
        attributes (update_wrapper), above all csrf_exempt: without it admin_view and the CSRF
        middleware would read the body before the upload view can install its upload handler."""

        def bound(request: HttpRequest, *args, **kwargs):
            return view(request, self, *args, **kwargs)

        return self.admin_site.admin_view(update_wrapper(bound, view))

    def job_figures(self, job: ImportJob):
        return IMPORT_FIGURES

    def job_controls(self, job: ImportJob):
        return IMPORT_CONTROLS

    def job_links(self, job: ImportJob):
        links = [JobLink("Download the report: invalid rows and warnings (CSV)", reverse("import-errors", args=[job.pk]),
                         if_positive="report_lines")]
        if job.list_id:
            links.append(JobLink("Subscribers of the list",
                                 reverse("admin:subscribers_subscriber_changelist") + f"?list__id__exact={job.list_id}"))
        return links

    @admin.display(description="list")
    def list_link(self, job: ImportJob) -> str:
        if not job.list_id:
            return f"{job.list_name} (deleted)"
        return format_html('<a href="{}">{}</a>', reverse("admin:subscribers_subscriberlist_change", args=[job.list_id]),
                           job.list_name)

    @admin.display(description="size")
    def size_display(self, job: ImportJob) -> str:
        return filesizeformat(job.size_bytes)

    @admin.display(description="SHA-256")
    def sha256_display(self, job: ImportJob) -> str:
        return format_html("<code>{}</code>", job.sha256) if job.sha256 else "-"

    @admin.display(description="how the file is read")
    def options_display(self, job: ImportJob) -> str:
        return describe_options(job)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs start from the upload page

    def has_change_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    # The list cells are short on purpose (see list_display): long names are cut, in full in the
    # tooltip, and dates are numeric; the page's CSS keeps words whole.
    @admin.display(description="date", ordering="created_at")
    def date_display(self, job: ImportJob) -> str:
        when = timezone.localtime(job.created_at)
        return format_html('<time datetime="{}">{}<br>{}</time>', when.isoformat(), f"{when:%Y-%m-%d}", f"{when:%H:%M}")

    @admin.display(description="list", ordering="list_name")
    def list_name_display(self, job: ImportJob) -> str:
        return _cut(job.list_name)

    @admin.display(description="file", ordering="filename")
    def file_display(self, job: ImportJob) -> str:
        return _cut(job.filename or job.get_source_display())

    @admin.display(description="created", ordering="created")
    def created_display(self, job: ImportJob) -> str:
        return f"{job.created:,}"

    @admin.display(description="updated", ordering="updated")
    def updated_display(self, job: ImportJob) -> str:
        return f"{job.updated:,}"

    @admin.display(description="invalid", ordering="invalid")
    def invalid_display(self, job: ImportJob) -> str:
        if not job.warnings:
            return f"{job.invalid:,}"
        # Kept rows with a field left out are no invalid rows, but an operator scanning the list
        # should see that the report has something in it.
        return format_html('{} <span class="import-warnings" title="Fields left out of rows that were imported">'
                           '(+{} warnings)</span>', f"{job.invalid:,}", f"{job.warnings:,}")

    @admin.display(description="status", ordering="status")
    def status_display(self, job: ImportJob) -> str:
        tooltip = f"Rows read: {job.processed_rows:,}; {REPEATED}: {job.duplicates:,}"
        return format_html(
            '<span class="import-status">{}</span><br><span class="import-progress" title="{}">'
            '<progress max="100" value="{}"></progress> {}%</span>',
            import_status_label(job_figures(job)["display_status"]), tooltip, job.progress, f"{job.progress:.0f}",
        )

    def _each(self, request: HttpRequest, queryset: QuerySet[ImportJob], service, verb: str) -> None:
        done = 0
        for job in queryset:
            try:
                service(actor=admin_actor(request), job=job)
                done += 1
            except ServiceError as exc:
                self.report(request, exc)
        if done:
            self.message_user(request, f"{verb} {done} job(s).")

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        self._each(request, queryset, services.import_cancel, "Cancelled")

    @admin.action(description="Retry selected failed jobs from their checkpoint", permissions=["change"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        self._each(request, queryset, services.import_force_retry, "Retried")

    @admin.action(description="Mark stuck jobs (among the selected) failed", permissions=["change"])
    def cleanup_stuck(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        result = services.imports_cleanup_stuck(actor=admin_actor(request), jobs=queryset)
        self.message_user(request, result["message"])

    @admin.action(description="Delete the records of selected finished jobs", permissions=["delete"])
    def clear_finished(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        result = services.jobs_clear(actor=admin_actor(request), jobs=queryset)
        self.message_user(request, result["message"])

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
