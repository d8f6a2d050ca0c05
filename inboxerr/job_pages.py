"""The live page of a background job in the admin (an import, a campaign, a bulk email job, a
batch): one panel whose figures all come from the task tracker, so the first render, the
WebSocket pushes and the polling fallback all say the same thing, and buttons that call the
job's services (pause, resume, cancel, retry...) with the admin's CSRF-protected POST.

A ModelAdmin opts in with JobPageMixin and declares its figures and controls; its change form
template includes `admin/includes/job_panel.html`."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timezone

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.formats import number_format

from inboxerr.admin_tools import admin_actor, format_seconds
from inboxerr.errors import NotFound, ServiceError
from inboxerr.tracker import FINISHED_STATUSES, task_get

# A pace is shown while the job moves; paused or finished, an average since the start misleads.
MOVING_STATUSES = ("starting", "running", "processing")


@dataclass(frozen=True)
class Figure:
    """One number on the panel: `key` is a key of the task's `result`."""

    key: str
    label: str


@dataclass(frozen=True)
class JobControl:
    """A button on the panel. `run(actor, obj)` calls the service; `when` lists the tracker
    statuses in which the button is offered, and `if_positive` a result figure that must be above
    zero (the service still decides)."""

    verb: str
    label: str
    run: Callable
    when: tuple[str, ...]
    danger: bool = False
    done: str = ""
    if_positive: str = ""


@dataclass(frozen=True)
class JobLink:
    """A plain link on the panel, shown in the statuses of `when` (all, if empty) while
    result[`if_positive`] > 0 (if set)."""

    label: str
    url: str
    if_positive: str = ""
    when: tuple[str, ...] = ()


@dataclass
class Panel:
    job: dict
    figures: list[dict] = field(default_factory=list)
    controls: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)


def _positive(result: dict, key: str) -> bool:
    return not key or (result.get(key) or 0) > 0


def humanize_status(status: str) -> str:
    return status.replace("_", " ").capitalize()


def format_moment(moment) -> str:
    """'2026-11-30 04:11:47 UTC': the one way the panel writes a time (its script writes the same)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


class JobPageMixin:
    """For a ModelAdmin whose objects are tracked jobs: subclasses say which figures, controls
    and links a job's panel has."""

    def job_id(self, obj) -> str:
        return str(obj.pk)

    def job_figures(self, obj) -> Sequence[Figure]:
        return ()

    def job_controls(self, obj) -> Sequence[JobControl]:
        return ()

    def job_links(self, obj) -> Sequence[JobLink]:
        return ()

    def job_panel(self, request: HttpRequest, obj) -> Panel:
        job = task_get(user=request.user, task_id=self.job_id(obj)).data
        result = job["result"]
        opts = self.model._meta
        panel = Panel(job=job)
        panel.links = [
            {"label": link.label, "url": link.url, "if_positive": link.if_positive, "when": " ".join(link.when),
             "shown": _positive(result, link.if_positive) and (not link.when or job["status"] in link.when)}
            for link in self.job_links(obj)
        ]
        panel.figures = [
            {"key": f.key, "label": f.label, "value": number_format(result.get(f.key, 0), force_grouping=True)}
            for f in self.job_figures(obj)
        ]
        if self.has_change_permission(request):
            for control in self.job_controls(obj):
                url = reverse(f"admin:{opts.app_label}_{opts.model_name}_job_control", args=[obj.pk, control.verb])
                shown = job["status"] in control.when and _positive(result, control.if_positive)
                panel.controls.append({"label": control.label, "url": url, "when": " ".join(control.when),
                                       "if_positive": control.if_positive, "shown": shown, "danger": control.danger})
        return panel

    def job_panel_context(self, request: HttpRequest, object_id: str) -> dict:
        obj = self.get_object(request, object_id)
        if obj is None:
            return {}
        try:
            panel = self.job_panel(request, obj)
        except NotFound:  # not a trackable job (a malformed id): the page shows without a panel
            return {}
        job = panel.job
        return {
            "panel": panel,
            "job": job,
            "job_status_label": humanize_status(job["status"]),
            "job_finished": job["status"] in FINISHED_STATUSES,
            "job_rate": (f"{number_format(job['rate'], 1, force_grouping=True)} {job['rate_unit']}/s"
                         if job["status"] in MOVING_STATUSES else "-"),
            "job_eta": format_seconds(job["eta_seconds"]),
            "job_started_at": format_moment(job["started_at"]),
            "job_finished_at": format_moment(job["finished_at"]),
        }

    def get_urls(self):
        opts = self.model._meta
        control = path("<path:object_id>/job/<slug:verb>/", self.admin_site.admin_view(self.job_control_view),
                       name=f"{opts.app_label}_{opts.model_name}_job_control")
        return [control, *super().get_urls()]

    def job_control_view(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        """POST only: run one control's service on the job, then back to its page with a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404("No such job")
        control = next((c for c in self.job_controls(obj) if c.verb == verb), None)
        if control is None:
            raise Http404("No such action")
        try:
            control.run(admin_actor(request), obj)
        except ServiceError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        else:
            self.message_user(request, control.done or f"{control.label}: done.", level=messages.SUCCESS)
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        context = {**self.job_panel_context(request, object_id), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)
