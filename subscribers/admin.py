"""The operations console for lists, subscribers and suppressions. Every change goes through
the same services as the API, so the admin writes the same audit rows and keeps the same rules."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.text import slugify

from import_export.admin import ImportExportMixin

from inboxerr.admin_fields import KeyValueField, keep_unchanged_types
from inboxerr.admin_tools import EstimatedCountPaginator, OwnedAdmin, admin_actor
from inboxerr.errors import ServiceError
from subscribers import selectors, services
from inboxerr.csvsafe import csv_lines
from subscribers.models import Subscriber, SubscriberList, SubscriberStatus, Suppression
from subscribers.normalize import RecordError, clean_record
from subscribers.resources import SuppressionResource


@admin.register(SubscriberList)
class SubscriberListAdmin(OwnedAdmin):
    list_display = ("name", "owner", "key_field", "subscriber_count", "created_at")
    list_select_related = ("owner",)
    search_fields = ("name",)
    list_filter = ("key_field",)
    readonly_fields = ("subscriber_count", "created_at")
    actions = ("export_list", "delete_lists")

    def get_fields(self, request: HttpRequest, obj: SubscriberList | None = None):
        fields = ["name", "description", "key_field", "subscriber_count", "created_at"]
        if request.user.is_superuser and obj is None:
            fields.insert(0, "owner")
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: SubscriberList | None = None):
        # The key field is fixed once subscribers have been keyed on it.
        return (*self.readonly_fields, "key_field") if obj else self.readonly_fields

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletion goes through the safe action below
        return actions

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        # Read from the database, not the page's object: after a refused rename that one holds
        # the refused name, which may not even fit in a URL.
        stored = self.get_object(request, object_id)
        links = self._links(request, stored) if stored else []
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "list_links": links})

    def _links(self, request: HttpRequest, subscriber_list: SubscriberList) -> list[tuple[str, str]]:
        """Where an operator goes from a list: its subscribers, an import into it, its export and
        the campaigns that send to it."""
        user, pk = request.user, subscriber_list.pk
        links = []
        if user.has_perm("subscribers.view_subscriber"):
            links.append(("Subscribers", f"{reverse('admin:subscribers_subscriber_changelist')}?list={pk}"))
            owner = urlencode({"owner": subscriber_list.owner.get_username()})
            links.append(("Export CSV", f"{reverse('list-export', args=[subscriber_list.name])}?{owner}"))
        if user.has_perm("imports.add_importjob"):
            links.append(("Import a CSV", f"{reverse('admin:imports_importjob_upload')}?list={pk}"))
        if user.has_perm("campaigns.view_campaign"):
            links.append(("Campaigns", f"{reverse('admin:campaigns_campaign_changelist')}?lists__id__exact={pk}"))
        return links

    def has_delete_permission(self, request: HttpRequest, obj: SubscriberList | None = None) -> bool:
        return False  # the plain delete would skip the safety checks; use "Delete list safely"

    def service_save(self, request: HttpRequest, obj: SubscriberList, form: forms.ModelForm, change: bool) -> SubscriberList:
        actor = admin_actor(request)
        if change:
            return services.list_update(actor=actor, subscriber_list=obj, name=obj.name, description=obj.description)
        owner = obj.owner if request.user.is_superuser and obj.owner_id else request.user
        return services.list_create(
            actor=actor, owner=owner, name=obj.name, description=obj.description, key_field=obj.key_field
        )

    @admin.action(description="Export selected list as CSV", permissions=["view"])
    def export_list(self, request: HttpRequest, queryset: QuerySet[SubscriberList]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one list to export.", level=messages.WARNING)
            return None
        subscriber_list = queryset.get()
        rows = services.list_export(actor=admin_actor(request), subscriber_list=subscriber_list)
        response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{slugify(subscriber_list.name) or "list"}.csv"'
        return response

    @admin.action(description="Delete selected lists safely (with their subscribers)", permissions=["change"])
    def delete_lists(self, request: HttpRequest, queryset: QuerySet[SubscriberList]) -> HttpResponse | None:
        if not request.user.has_perm("subscribers.delete_subscriberlist"):
            self.message_user(request, "You may not delete lists.", level=messages.ERROR)
            return None
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Delete lists",
                "lists": queryset,
                "total": sum(lst.subscriber_count for lst in queryset),
                "queryset": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/subscribers/delete_lists_confirm.html", context)
        force = request.POST.get("force") == "on"
        reason = request.POST.get("reason", "")[:500]
        for subscriber_list in queryset:
            try:
                summary = services.list_delete(
                    actor=admin_actor(request), subscriber_list=subscriber_list, force=force, reason=reason
                )
            except ServiceError as exc:
                self.report(request, exc)
                continue
            self.message_user(request, f"{summary['message']}: {summary['deletion_summary']['subscribers_deleted']:,} subscribers removed.")
        return None


class SubscriberAdminForm(forms.ModelForm):
    standard_fields = KeyValueField(help_text="first_name, last_name, company ... (see the README).")
    custom_fields = KeyValueField()

    class Meta:
        model = Subscriber
        fields = ("list", "email", "phone", "name", "status", "standard_fields", "custom_fields")

    def clean(self) -> dict:
        data = super().clean()
        for name in ("standard_fields", "custom_fields"):
            if name in data:
                data[name] = keep_unchanged_types(data[name], getattr(self.instance, name))
        subscriber_list = data.get("list")
        if subscriber_list is None:
            return data
        try:
            clean = clean_record(
                {k: data.get(k) for k in ("email", "phone", "name", "status", "standard_fields", "custom_fields")},
                subscriber_list.key_field,
                strict=True,  # a person at a form fixes a bad phone rather than lose it
            )
        except RecordError as exc:
            field = exc.field if exc.field in self.fields else None
            raise forms.ValidationError({field: exc.message} if field else str(exc)) from None
        clash = Subscriber.objects.filter(list=subscriber_list, key=clean.key)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError({subscriber_list.key_field: f"{clean.key} is already on this list."})
        return data


class ListFilter(admin.SimpleListFilter):
    """The lists the viewer owns (a related filter over every list would not scale or scope)."""

    title = "list"
    parameter_name = "list"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        lists = SubscriberList.objects.all() if request.user.is_superuser else SubscriberList.objects.filter(owner=request.user)
        return [(str(pk), name) for pk, name in lists.order_by("name").values_list("pk", "name")[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Subscriber]):
        return queryset.filter(list_id=self.value()) if self.value() else queryset


def _status_action(status: str):
    def action(modeladmin: "SubscriberAdmin", request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        changed = services.subscribers_set_status(actor=admin_actor(request), subscribers=queryset, status=status)
        modeladmin.message_user(request, f"{changed} subscriber(s) set to {status}.")

    action.__name__ = f"mark_{status}"
    return admin.action(description=f"Mark selected subscribers as {status}", permissions=["change"])(action)


@admin.register(Subscriber)
class SubscriberAdmin(OwnedAdmin):
    owner_path = "list__owner"
    form = SubscriberAdminForm
    list_display = ("email", "phone", "name", "status", "list", "created_at")
    list_select_related = ("list",)
    list_filter = ("status", ListFilter)
    search_fields = ("email",)  # the search itself is get_search_results: the API's strategies
    search_help_text = "An address (exact), the start of one, a phone number, or part of a name."
    raw_id_fields = ("list",)
    readonly_fields = ("key", "import_job", "created_at", "updated_at")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    ordering = ("-created_at", "-id")
    actions = [_status_action(status) for status in SubscriberStatus.values]

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "list" and not request.user.is_superuser:
            kwargs["queryset"] = SubscriberList.objects.filter(owner=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Subscriber], search_term: str):
        # The admin's default search (UPPER(col) LIKE '%x%' on every field) has no index to use
        # at a million rows; the API's strategies do.
        if not search_term.strip():
            return queryset, False
        strategy = selectors.search_strategy(search_term, "smart")
        return queryset.filter(selectors.search_filter(search_term, strategy)), False

    def service_save(self, request: HttpRequest, obj: Subscriber, form: forms.ModelForm, change: bool) -> Subscriber:
        data = {k: form.cleaned_data.get(k) for k in ("email", "phone", "name", "status", "standard_fields", "custom_fields")}
        actor = admin_actor(request)
        if change:
            return services.subscriber_update(actor=actor, subscriber=obj, data={**data, "list": obj.list.name})
        return services.subscriber_create(actor=actor, owner=obj.list.owner, list_name=obj.list.name, record=data)

    def delete_model(self, request: HttpRequest, obj: Subscriber) -> None:
        services.subscriber_delete(actor=admin_actor(request), subscriber=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        services.subscribers_delete(actor=admin_actor(request), subscribers=queryset)


@admin.register(Suppression)
class SuppressionAdmin(ImportExportMixin, OwnedAdmin):
    resource_classes = [SuppressionResource]

    def get_resource_kwargs(self, request: HttpRequest, *args, **kwargs) -> dict:
        return {"actor": admin_actor(request)}

    list_display = ("address", "channel", "reason", "owner", "created_at")
    list_select_related = ("owner",)
    list_filter = ("channel", "reason")
    search_fields = ("^address",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = ("channel", "address", "reason")

    def has_change_permission(self, request: HttpRequest, obj: Suppression | None = None) -> bool:
        return False  # a suppression is added or removed, never edited

    def service_save(self, request: HttpRequest, obj: Suppression, form: forms.ModelForm, change: bool) -> Suppression:
        return services.suppression_create(
            actor=admin_actor(request), owner=request.user, channel=obj.channel, address=obj.address, reason=obj.reason
        )

    def delete_model(self, request: HttpRequest, obj: Suppression) -> None:
        services.suppression_delete(actor=admin_actor(request), suppression=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        for suppression in queryset:  # admin selections are a page at most
            services.suppression_delete(actor=admin_actor(request), suppression=suppression)
