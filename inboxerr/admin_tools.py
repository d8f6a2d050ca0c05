"""Pieces the admin modules share: owner scoping, estimated counts on big tables, admin forms
that turn bad input and service errors into form errors, and service errors into messages."""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from inboxerr.actors import Actor
from inboxerr.errors import ServiceError


def admin_actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, source="admin")


def unstorable_text(value: object) -> str | None:
    """Why PostgreSQL would refuse this value, or None. A NUL byte is refused in text and in jsonb,
    and a lone surrogate cannot be encoded for the connection; both would surface as a 500 from
    the database driver instead of a message on the field. Looks inside dicts and lists (JSON)."""
    if isinstance(value, str):
        if "\x00" in value:
            return "Null characters are not allowed."
        if any("\ud800" <= char <= "\udfff" for char in value):
            return "Contains characters that are not valid Unicode."
        return None
    if isinstance(value, dict):
        return next(filter(None, (unstorable_text(v) for item in value.items() for v in item)), None)
    if isinstance(value, (list, tuple)):
        return next(filter(None, (unstorable_text(v) for v in value)), None)
    return None


def service_error_to_form(form: forms.BaseForm, exc: ServiceError) -> None:
    """Put a service's error on the field it names (without the "field: " prefix the API needs),
    or on the whole form."""
    field = exc.field if exc.field in form.fields else None
    message = exc.message.removeprefix(f"{field}: ") if field else exc.message
    form.add_error(field, message)


class AdminFormChecks:
    """Mixed into every admin ModelForm of a SafeFormAdmin.

    - A value PostgreSQL cannot store is an error on its field.
    - When the admin writes through a service (`SafeFormAdmin.service_save`), the write runs as
      the last step of validation, inside the request's transaction; a ServiceError it raises
      (a name with '/', a name already taken ...) becomes a form error and the page is shown
      again, where raising it from save_model would answer 500. These admins have no inlines,
      so nothing validated after this step could still refuse the form.
    """

    service_save: Callable[[forms.ModelForm], models.Model] | None = None
    saved: models.Model | None = None

    def _clean_fields(self) -> None:
        super()._clean_fields()
        for name, value in list(self.cleaned_data.items()):
            problem = unstorable_text(value)
            if problem:
                self.add_error(name, problem)

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors or self.service_save is None:
            return
        try:
            with transaction.atomic():
                self.saved = self.service_save(self)
        except ServiceError as exc:
            service_error_to_form(self, exc)


class SafeFormAdmin(admin.ModelAdmin):
    """An admin whose forms refuse unstorable text and show service errors on the form.

    Override `service_save` to write through a service; it gets the form whose instance holds the
    submitted values and returns the saved object.
    """

    def service_save(self, request: HttpRequest, obj: models.Model, form: forms.ModelForm,
                     change: bool) -> models.Model | None:
        return None

    def get_form(self, request: HttpRequest, obj: models.Model | None = None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if issubclass(form, AdminFormChecks):
            return form
        saves_through_service = type(self).service_save is not SafeFormAdmin.service_save

        def service_save(bound: forms.ModelForm) -> models.Model:
            return self.service_save(request, bound.instance, bound, not bound.instance._state.adding)

        attrs = {"service_save": staticmethod(service_save)} if saves_through_service else {}
        return type(form)(form.__name__, (AdminFormChecks, form), attrs)

    def save_model(self, request: HttpRequest, obj: models.Model, form: forms.ModelForm, change: bool) -> None:
        saved = getattr(form, "saved", None)
        if saved is None:
            super().save_model(request, obj, form, change)
            return
        obj.pk = saved.pk
        obj._state.adding = False


class OwnedAdmin(SafeFormAdmin):
    """A non-superuser sees and picks only what they own, and owns what they add. `owner_path` is
    the lookup from the model to its owning user."""

    owner_path = "owner"

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{self.owner_path: request.user})

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        if self.owner_path == "owner":
            initial.setdefault("owner", request.user.pk)
        return initial

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "owner" and self.owner_path == "owner" and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model.objects.filter(pk=request.user.pk)
            kwargs["empty_label"] = None
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def report(self, request: HttpRequest, exc: ServiceError) -> None:
        self.message_user(request, exc.message, level=messages.ERROR)


class EstimatedCountPaginator(Paginator):
    """Admin paginator for tables of millions of rows: the unfiltered count comes from the
    planner's statistics, a filtered one is exact only up to a cap (see capped_count)."""

    @cached_property
    def count(self) -> int:
        from subscribers.selectors import capped_count

        query = self.object_list.query
        if connection.vendor == "postgresql" and not query.where:
            table = self.object_list.model._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
                row = cursor.fetchone()
            if row and row[0] > 10_000:
                return int(row[0])
        return capped_count(self.object_list)[0]


def key_value_table(data: dict | None, depth: int = 0) -> SafeString | str:
    """A JSON object as a small table of names and values (nested objects nest), for the admin's
    read-only pages: people read words, not raw JSON. Every value is escaped."""
    if not data:
        return "-"
    rows = []
    for key, value in data.items():
        if isinstance(value, dict) and depth < 2:
            shown = key_value_table(value, depth + 1)
        elif isinstance(value, list | tuple):
            shown = ", ".join(str(item) for item in value) or "-"
        else:
            shown = "-" if value in (None, "") else str(value)
        rows.append((str(key).replace("_", " "), shown))
    body = format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", rows)
    return format_html('<table class="key-values">{}</table>', body)


def format_seconds(seconds: float | None) -> str:
    """A time span as the console writes it: '45 s', '12 min 5 s', '3 h 20 min'; '-' when unknown.
    (The job panel's script writes the same words; the API keeps its own figures.)"""
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
