"""The admin's import page: upload a CSV to a list, check the preview and the detected column
mapping, change it if needed, start the import, then follow the job's page."""

from itertools import islice
from pathlib import Path

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from imports import services
from imports.parsing import FileFormatError, detect_format, iter_records, plan_columns, read_header
from imports.upload import UPLOAD_FIELD, ImportUploadHandler, StoredUpload
from inboxerr.admin_tools import admin_actor
from inboxerr.errors import ServiceError
from subscribers.models import SubscriberList
from subscribers.normalize import STANDARD_FIELDS

SESSION_KEY = "inboxerr_pending_uploads"
PREVIEW_ROWS = 10


class UploadForm(forms.Form):
    file = forms.FileField(help_text="CSV: UTF-8 (with or without BOM) or Windows-1252; comma, semicolon or tab.")


def _target_choices(column_targets: list[str]) -> list[tuple[str, str]]:
    choices = [("email", "email"), ("phone", "phone"), ("name", "name"), ("status", "status")]
    choices += [(f"standard:{f}", f"standard: {f}") for f in STANDARD_FIELDS]
    customs = sorted({t for t in column_targets if t.startswith("custom:")})
    choices += [(t, f"custom: {t.split(':', 1)[1]}") for t in customs]
    choices.append(("ignore", "(ignore this column)"))
    return choices


def _lists_for(request: HttpRequest):
    lists = SubscriberList.objects.all()
    return lists if request.user.is_superuser else lists.filter(owner=request.user)


@csrf_exempt
def upload_view(request: HttpRequest, model_admin) -> HttpResponse:
    # The upload handler must be in place before anything reads the body, and CSRF checking
    # reads it: so the handler goes in first and the CSRF check runs inside (Django's documented
    # pattern for custom upload handlers).
    if request.method == "POST" and "confirm" not in request.GET:
        request.upload_handlers = [ImportUploadHandler(request)]
    return _upload_view(request, model_admin)


@csrf_protect
def _upload_view(request: HttpRequest, model_admin) -> HttpResponse:
    if not request.user.has_perm("imports.add_importjob"):
        raise PermissionDenied
    subscriber_list = get_object_or_404(_lists_for(request), pk=request.GET.get("list"))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Import into '{subscriber_list.name}'",
        "subscriber_list": subscriber_list,
    }
    if request.method == "POST" and "confirm" in request.GET:
        return _start(request, subscriber_list)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        handler = request.upload_handlers[0]
        upload = request.FILES.get(UPLOAD_FIELD)
        if getattr(handler, "too_large", False):
            form.add_error("file", "The file is larger than the upload limit (IMPORT_MAX_BYTES).")
        elif isinstance(upload, StoredUpload):
            try:
                return _preview(request, context, subscriber_list, upload.stored)
            except (FileFormatError, UnicodeDecodeError) as exc:
                services.discard_stored(upload.stored)
                form.add_error("file", str(exc))
    context["form"] = form
    return TemplateResponse(request, "admin/imports/upload.html", context)


def _preview(request: HttpRequest, context: dict, subscriber_list: SubscriberList, stored) -> HttpResponse:
    fmt = detect_format(stored.path, encoding=stored.encoding)
    header = read_header(stored.path, fmt)
    plan = plan_columns(header)
    rows = [cells for _, cells, _ in islice(iter_records(stored.path, fmt, start=fmt.header_end, first_record=2), PREVIEW_ROWS)]
    pending = request.session.get(SESSION_KEY, {})
    token = stored.path.stem
    pending[token] = {"path": str(stored.path), "filename": stored.filename, "sha256": stored.sha256,
                      "size": stored.size, "encoding": stored.encoding, "list": subscriber_list.pk}
    request.session[SESSION_KEY] = pending
    choices = _target_choices(plan.targets)
    context.update({
        "token": token,
        "stored": stored,
        "format": fmt,
        "columns": [{"index": i, "name": name, "target": target} for i, (name, target) in enumerate(zip(header, plan.targets))],
        "choices": choices,
        "rows": rows,
        "title": f"Check the import into '{subscriber_list.name}'",
    })
    return TemplateResponse(request, "admin/imports/preview.html", context)


def _start(request: HttpRequest, subscriber_list: SubscriberList) -> HttpResponse:
    token = request.POST.get("token", "")
    pending = request.session.get(SESSION_KEY, {})
    info = pending.pop(token, None)
    request.session[SESSION_KEY] = pending
    if not info or info["list"] != subscriber_list.pk or not Path(info["path"]).exists():
        messages.error(request, "That upload is no longer available; upload the file again.")
        return HttpResponseRedirect(request.get_full_path().replace("&confirm=1", ""))
    stored = services.StoredFile(Path(info["path"]), info["filename"], info["sha256"], info["size"], info["encoding"])
    header = read_header(stored.path, detect_format(stored.path, encoding=stored.encoding))
    mapping = {name: request.POST.get(f"col_{i}", "ignore") for i, name in enumerate(header)}
    try:
        job = services.import_create(
            actor=admin_actor(request), owner=subscriber_list.owner, list_name=subscriber_list.name, stored=stored,
            mapping=mapping, update_existing=request.POST.get("update_existing") == "on",
            force=request.POST.get("force") == "on",
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("admin:subscribers_subscriberlist_change", args=[subscriber_list.pk]))
    messages.success(request, f"Import of '{job.filename}' queued.")
    return HttpResponseRedirect(reverse("admin:imports_importjob_change", args=[job.pk]))
