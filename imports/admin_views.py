"""The admin's import wizard: 1 choose a list (or create one), 2 upload the file, 3 check the
preview and the column mapping, 4 choose the options and start; then the job's own page.

Between steps the stored upload is remembered in the session under a random token (the stored
file's name), so only the operator who uploaded it can go on with it. The views parse the forms
and call imports.services / subscribers.services; the rules live there."""

from pathlib import Path

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from imports import services
from imports.selectors import list_to_preselect
from imports.admin_forms import ChooseListForm, MappingForm, NewListForm, OptionsForm, UploadForm
from imports.upload import UPLOAD_FIELD, ImportUploadHandler, StoredUpload
from imports.wording import delimiter_name, encoding_name, target_label
from inboxerr.admin_tools import admin_actor
from inboxerr.errors import ServiceError
from subscribers import services as subscriber_services
from subscribers.models import SubscriberList

SESSION_KEY = "inboxerr_pending_uploads"
PREVIEW_ROWS = 10
STEPS = ("Choose a list", "Upload the file", "Check the columns", "Options and start")


# --- plumbing shared by the steps ---------------------------------------------------------------

def _lists_for(request: HttpRequest) -> QuerySet[SubscriberList]:
    lists = SubscriberList.objects.select_related("owner").order_by("name")
    return lists if request.user.is_superuser else lists.filter(owner=request.user)


def _require_permission(request: HttpRequest) -> None:
    if not request.user.has_perm("imports.add_importjob"):
        raise PermissionDenied


def _context(request: HttpRequest, model_admin, step: int, title: str, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "steps": [{"label": name, "current": n == step} for n, name in enumerate(STEPS, start=1)],
        "step": step,
        **extra,
    }


def _form_message(exc: ServiceError) -> str:
    """A service message without its API prefix ("file: the file is empty" -> "The file is empty")."""
    message = exc.message
    if exc.field and message.startswith(f"{exc.field}: "):
        message = message[len(exc.field) + 2:]
    return message[:1].upper() + message[1:]


def _remember(request: HttpRequest, stored: services.StoredFile, subscriber_list: SubscriberList) -> str:
    token = stored.path.stem
    # Uploads left half-way (their files removed since, by a discard or the sweeper) are dropped,
    # so the session does not grow with every abandoned wizard.
    pending = {t: info for t, info in request.session.get(SESSION_KEY, {}).items() if Path(info["path"]).exists()}
    pending[token] = {"path": str(stored.path), "filename": stored.filename, "sha256": stored.sha256,
                      "size": stored.size, "encoding": stored.encoding, "list": subscriber_list.pk}
    request.session[SESSION_KEY] = pending
    return token


def _update(request: HttpRequest, token: str, **values) -> None:
    pending = request.session.get(SESSION_KEY, {})
    pending[token].update(values)
    request.session[SESSION_KEY] = pending


def _forget(request: HttpRequest, token: str) -> None:
    pending = request.session.get(SESSION_KEY, {})
    pending.pop(token, None)
    request.session[SESSION_KEY] = pending


class _Gone(Exception):
    """The upload behind a token is not this session's, or its file is no longer on disk."""


def _pending(request: HttpRequest, token: str) -> tuple[dict, services.StoredFile, SubscriberList]:
    info = request.session.get(SESSION_KEY, {}).get(token)
    if not info or not Path(info["path"]).exists():
        raise _Gone
    subscriber_list = _lists_for(request).filter(pk=info["list"]).first()
    if subscriber_list is None:
        raise _Gone
    stored = services.StoredFile(Path(info["path"]), info["filename"], info["sha256"], info["size"], info["encoding"])
    return info, stored, subscriber_list


def _gone(request: HttpRequest, token: str) -> HttpResponse:
    _forget(request, token)
    messages.error(request, "That upload is no longer available; upload the file again.")
    return HttpResponseRedirect(reverse("admin:imports_importjob_import"))


def _step_url(name: str, token: str) -> str:
    return reverse(f"admin:imports_importjob_{name}", args=[token])


# --- step 1: choose or create the list ----------------------------------------------------------

def choose_list_view(request: HttpRequest, model_admin) -> HttpResponse:
    _require_permission(request)
    lists = _lists_for(request)
    data = request.POST if request.method == "POST" else None
    creating = data is not None and "create" in data
    choose = ChooseListForm(None if creating else data, lists=lists, show_owner=request.user.is_superuser,
                            initial={"list": list_to_preselect(user=request.user, lists=lists)})
    new = NewListForm(data if creating else None, prefix="new")
    if creating and new.is_valid():
        try:
            subscriber_list = subscriber_services.list_create(
                actor=admin_actor(request), owner=request.user,
                name=new.cleaned_data["name"], key_field=new.cleaned_data["key_field"],
            )
        except ServiceError as exc:
            new.add_error(exc.field if exc.field in new.fields else None, _form_message(exc))
        else:
            messages.success(request, f"Created the list '{subscriber_list.name}'.")
            return _to_upload(subscriber_list)
    elif data is not None and not creating and choose.is_valid():
        return _to_upload(choose.cleaned_data["list"])
    context = _context(request, model_admin, 1, "Import a CSV: choose a list", choose=choose, new=new,
                       has_lists=lists.exists())
    return TemplateResponse(request, "admin/imports/wizard_list.html", context)


def _to_upload(subscriber_list: SubscriberList) -> HttpResponse:
    return HttpResponseRedirect(f"{reverse('admin:imports_importjob_upload')}?list={subscriber_list.pk}")


# --- step 2: upload -----------------------------------------------------------------------------

@csrf_exempt
def upload_view(request: HttpRequest, model_admin) -> HttpResponse:
    # The upload handler must be in place before anything reads the body, and the CSRF check
    # reads it (the token is a form field): so this view is exempt from the admin's and the
    # middleware's check, installs the handler, and then checks CSRF itself, inside.
    if request.method == "POST":
        request.upload_handlers = [ImportUploadHandler(request)]
    try:
        return _upload_view(request, model_admin)
    finally:
        _discard_unclaimed(request)


def _discard_unclaimed(request: HttpRequest) -> None:
    """A file stored while the body was read but not taken on to the next step (refused CSRF,
    a bad form, an outsider's list) is removed at once."""
    if request.method != "POST" or not hasattr(request, "_files"):
        return  # the body was never parsed, so nothing was stored
    upload = request.FILES.get(UPLOAD_FIELD)
    if isinstance(upload, StoredUpload):
        claimed = {info["path"] for info in request.session.get(SESSION_KEY, {}).values()}
        if str(upload.stored.path) not in claimed:
            services.discard_stored(upload.stored)


@csrf_protect
def _upload_view(request: HttpRequest, model_admin) -> HttpResponse:
    _require_permission(request)
    list_id = request.GET.get("list", "")
    if not list_id.isdigit():
        return HttpResponseRedirect(reverse("admin:imports_importjob_import"))
    subscriber_list = get_object_or_404(_lists_for(request), pk=list_id)
    if request.method == "POST":
        handler = request.upload_handlers[0]
        form = UploadForm(request.POST, request.FILES, too_large=getattr(handler, "too_large", False))
        upload = request.FILES.get(UPLOAD_FIELD)
        if form.is_valid() and isinstance(upload, StoredUpload):
            try:
                services.import_preview(stored=upload.stored, subscriber_list=subscriber_list, rows=1)
            except ServiceError as exc:
                form.add_error("file", _form_message(exc))
            else:
                token = _remember(request, upload.stored, subscriber_list)
                return HttpResponseRedirect(_step_url("mapping", token))
    else:
        form = UploadForm()
    context = _context(request, model_admin, 2, f"Import a CSV into '{subscriber_list.name}': upload",
                       subscriber_list=subscriber_list, form=form)
    return TemplateResponse(request, "admin/imports/upload.html", context)


# --- step 3: preview and mapping ----------------------------------------------------------------

def mapping_view(request: HttpRequest, model_admin, token: str) -> HttpResponse:
    _require_permission(request)
    try:
        info, stored, subscriber_list = _pending(request, token)
        preview = services.import_preview(stored=stored, subscriber_list=subscriber_list,
                                          mapping=info.get("mapping"), rows=PREVIEW_ROWS)
    except (_Gone, ServiceError):
        return _gone(request, token)
    form = MappingForm(request.POST or None, header=preview.header, targets=preview.plan.targets,
                       keep_raw=info.get("keep_raw", []))
    if request.method == "POST" and form.is_valid():
        mapping, keep_raw = form.mapping(), form.keep_raw()
        try:
            services.import_check_file(stored=stored, key_field=subscriber_list.key_field, mapping=mapping,
                                       keep_raw=keep_raw)
        except ServiceError as exc:
            form.add_error(None, _mapping_message(exc, subscriber_list))
        else:
            _update(request, token, mapping=mapping, keep_raw=keep_raw)
            return HttpResponseRedirect(_step_url("options", token))
    columns = [{"field": form[f"col_{i}"], "keep": form[f"keep_{i}"], "samples": _samples(preview.rows, i)}
               for i in range(len(preview.header))]
    context = _context(
        request, model_admin, 3, f"Import a CSV into '{subscriber_list.name}': check the columns",
        subscriber_list=subscriber_list, stored=stored, preview=preview, form=form, columns=columns, token=token,
        delimiter_name=delimiter_name(preview.format.delimiter), encoding_name=encoding_name(preview.format.encoding),
    )
    return TemplateResponse(request, "admin/imports/preview.html", context)


def _samples(rows: list[list[str]], index: int) -> list[str]:
    """The first three non-blank values of a column, shown beside its select."""
    return [row[index] for row in rows if index < len(row) and row[index].strip()][:3]


def _mapping_message(exc: ServiceError, subscriber_list: SubscriberList) -> str:
    key = exc.extra.get("missing_column")
    if key:
        return (f"No column is mapped to {key}, the key field of '{subscriber_list.name}'. "
                f"Choose {key} for the column that holds the {key} values; the import cannot start without it.")
    return _form_message(exc)


# --- step 4: options and start ------------------------------------------------------------------

def options_view(request: HttpRequest, model_admin, token: str) -> HttpResponse:
    _require_permission(request)
    try:
        info, stored, subscriber_list = _pending(request, token)
    except _Gone:
        return _gone(request, token)
    if "mapping" not in info:
        return HttpResponseRedirect(_step_url("mapping", token))
    form = OptionsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.import_create(
                actor=admin_actor(request), owner=subscriber_list.owner, list_name=subscriber_list.name,
                stored=stored, mapping=info["mapping"], keep_raw=info.get("keep_raw"),
                update_existing=form.cleaned_data["update_existing"],
                force=form.cleaned_data["force"], keep_file_on_error=True,
            )
        except ServiceError as exc:
            form.add_error("force" if exc.extra.get("import_id") else None, _options_message(exc))
        else:
            _forget(request, token)
            messages.success(request, f"Import of '{job.filename}' into '{job.list_name}' started.")
            return HttpResponseRedirect(reverse("admin:imports_importjob_change", args=[job.pk]))
    previous = services.import_preview(stored=stored, subscriber_list=subscriber_list, rows=1).previous_job
    context = _context(
        request, model_admin, 4, f"Import a CSV into '{subscriber_list.name}': options",
        subscriber_list=subscriber_list, stored=stored, form=form, token=token, previous=previous,
        mapping=[(column, target_label(target)) for column, target in info["mapping"].items() if target != "ignore"],
        ignored=[column for column, target in info["mapping"].items() if target == "ignore"],
        keep_raw=info.get("keep_raw", []),
    )
    return TemplateResponse(request, "admin/imports/options.html", context)


def _options_message(exc: ServiceError) -> str:
    if exc.extra.get("import_id"):
        # The page already says, above the form, which import took this file (with a link): the
        # error only says what to do, so the operator does not read the same fact twice.
        return "Tick “Import this file again” to import it anyway."
    return _form_message(exc)


@require_POST
def discard_view(request: HttpRequest, model_admin, token: str) -> HttpResponse:
    """Cancel the wizard: the stored file is removed at once."""
    _require_permission(request)
    try:
        _, stored, subscriber_list = _pending(request, token)
    except _Gone:
        _forget(request, token)
        raise Http404 from None
    services.discard_stored(stored)
    _forget(request, token)
    messages.info(request, f"The upload of '{stored.filename}' was discarded; nothing was imported.")
    return _to_upload(subscriber_list)
