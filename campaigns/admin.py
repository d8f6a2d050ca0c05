"""The console for templates, campaigns, messages and rate limits; actions call the services."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import escape, format_html

from campaigns import admin_wizard, batches, ratelimit, services
from campaigns.models import Campaign, CampaignKind, Message, MessageBatch, MessageTemplate, OutboxSwitch, RateLimit
from campaigns.selectors import campaign_figures
from inboxerr.admin_tools import EstimatedCountPaginator, OwnedAdmin, admin_actor, key_value_table
from inboxerr.errors import ServiceError
from inboxerr.job_pages import Figure, JobControl, JobLink, JobPageMixin
from subscribers.models import Channel


# The admin shows help text as HTML (these are constants, never user data).
MERGE_HELP = (
    'Merge fields: <code>{{ name }}</code> puts the recipient\'s value there; '
    '<code>{{ first_name|default:"there" }}</code> puts "there" for a recipient without it. '
    "Every recipient has name, email, phone and unsubscribe_url, and the keys of their standard and custom "
    "fields. A <code>{{</code> must close with <code>}}</code> on the same line."
)


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ("name", "channel", "subject", "body_text", "body_html", "is_active")
        help_texts = {
            "subject": "Email only. " + MERGE_HELP,
            "body_text": "The plain-text body (the whole message for SMS). Same merge fields as the subject.",
            "body_html": "Optional HTML body for email; merge values are HTML-escaped. Same merge fields.",
        }

    def clean(self) -> dict:
        data = super().clean()
        try:
            services.check_template(channel=data.get("channel", ""), subject=data.get("subject", ""),
                                    body_text=data.get("body_text", ""), body_html=data.get("body_html", ""))
        except ServiceError as exc:
            if exc.field in self.fields:
                # Shown under the field itself, so its raw name in front would only be noise.
                raise forms.ValidationError({exc.field: exc.message.removeprefix(f"{exc.field}: ")}) from None
            raise forms.ValidationError(exc.message) from None
        owner_id = self.instance.owner_id or getattr(self, "request_user_id", None)
        clash = MessageTemplate.objects.filter(owner_id=owner_id, name=data.get("name")).exclude(pk=self.instance.pk)
        if owner_id and clash.exists():
            raise forms.ValidationError({"name": f"Template '{data.get('name')}' already exists"})
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(OwnedAdmin):
    form = MessageTemplateForm

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request_user_id = request.user.pk  # new templates belong to the user adding them
        return form
    list_display = ("name", "channel", "owner", "is_active", "variables_display", "updated_at")
    list_filter = ("channel", "is_active")
    search_fields = ("name",)
    list_select_related = ("owner",)
    readonly_fields = ("variables_display", "rendered_preview")
    fields = ("name", "channel", "subject", "body_text", "body_html", "is_active", "variables_display",
              "rendered_preview")

    @admin.display(description="variables")
    def variables_display(self, template: MessageTemplate) -> str:
        return ", ".join(template.variables) or "-"

    @admin.display(description="preview (sample values)")
    def rendered_preview(self, template: MessageTemplate) -> str:
        if not template.pk:
            return "-"
        from campaigns.rendering import compile_parts, recipient_context

        sample = {name: f"<{name}>" for name in template.variables}
        compiled = compile_parts(subject=template.subject, body_text=template.body_text, body_html=template.body_html)
        subject, text, _ = compiled.render(recipient_context(name="Sample Person", email="sample@example.com", variables=sample))
        # render() marks its output safe; here it is untrusted text to show, not HTML to run.
        return format_html("<strong>{}</strong><pre class='wrapped'>{}</pre>", escape(subject), escape(text))

    def save_model(self, request: HttpRequest, obj: MessageTemplate, form: forms.ModelForm, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in services.TEMPLATE_FIELDS}
        if change:
            saved = services.template_update(actor=admin_actor(request), template=obj, data=data)
        else:
            saved = services.template_create(actor=admin_actor(request), owner=request.user, **data)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: MessageTemplate) -> None:
        services.template_delete(actor=admin_actor(request), template=obj)


def _campaign_action(service, label: str):
    def action(modeladmin, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        done = 0
        for campaign in queryset:
            try:
                service(actor=admin_actor(request), campaign=campaign)
                done += 1
            except ServiceError as exc:
                modeladmin.message_user(request, f"{campaign.name}: {exc.message}", level=messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{label}: {done} campaign(s).")

    action.__name__ = f"{service.__name__}_action"
    return admin.action(description=f"{label} selected campaigns", permissions=["change"])(action)


CAMPAIGN_FIGURES = (
    Figure("total", "Recipients"), Figure("sent", "Sent"), Figure("failed", "Failed"), Figure("skipped", "Skipped"),
    Figure("unknown", "Outcome unknown"), Figure("pending", "Still to send"),
)
BULK_EMAIL_FIGURES = (
    Figure("recipient_count", "Recipients"), Figure("emails_sent", "Sent"), Figure("emails_failed", "Failed"),
    Figure("skipped", "Skipped"), Figure("emails_pending", "Still to send"),
)


def _control(verb: str, label: str, service, when: tuple[str, ...], done: str, danger: bool = False,
             if_positive: str = "") -> JobControl:
    return JobControl(verb, label, lambda actor, campaign: service(actor=actor, campaign=campaign), when=when,
                      danger=danger, done=done, if_positive=if_positive)


# The statuses in which each button is offered are the tracker's (a bulk email job reports its own
# vocabulary: pending, running, completed, failed, cancelled); the services have the last word.
CAMPAIGN_CONTROLS = (
    _control("pause", "Pause", services.campaign_pause, ("starting", "running"),
             "Campaign paused: workers finish the messages in flight and send nothing more."),
    _control("resume", "Resume", services.campaign_resume, ("paused",), "Campaign resumed."),
    _control("retry-failed", "Retry the failed messages", services.campaign_retry_failed,
             ("running", "paused", "completed", "failed"), "Failed messages queued again.", if_positive="failed"),
    _control("cancel", "Cancel the campaign", services.campaign_cancel,
             ("draft", "scheduled", "starting", "running", "paused"),
             "Campaign cancelled: its queued messages will not be sent.", danger=True),
)
BULK_EMAIL_CONTROLS = (
    _control("retry-failed", "Retry the failed emails", services.campaign_retry_failed, ("completed", "failed"),
             "Failed emails queued again.", if_positive="emails_failed"),
    _control("cancel", "Cancel the job", services.campaign_cancel, ("pending", "running"),
             "Job cancelled: its queued emails will not be sent.", danger=True),
)


@admin.register(Campaign)
class CampaignAdmin(JobPageMixin, OwnedAdmin):
    list_display = ("name", "kind", "channel", "status", "progress_bar", "sent_count", "failed_count", "skipped_count", "created_at")
    list_filter = ("status", "channel", "kind")
    search_fields = ("name",)
    list_select_related = ("owner",)
    # Status, counters and timings are in the live panel above the form.
    fields = ("name", "kind", "channel", "owner", "template", "subject_display", "content_display", "audience",
              "scheduled_at", "created_at", "fan_out_display", "job_data_display")
    readonly_fields = fields
    actions = [
        "test_send_to_me",
        "campaign_start_action",
        _campaign_action(services.campaign_pause, "Pause"),
        _campaign_action(services.campaign_resume, "Resume"),
        _campaign_action(services.campaign_cancel, "Cancel"),
        _campaign_action(services.campaign_retry_failed, "Retry failed messages of"),
    ]

    def get_urls(self):
        return admin_wizard.urls(self) + super().get_urls()

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        # "Add campaign" opens the wizard: a campaign is made through campaign_create, which
        # checks audience, content and merge fields together, not through a model form.
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_wizard"))

    def has_change_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def job_figures(self, campaign: Campaign):
        return BULK_EMAIL_FIGURES if campaign.kind == CampaignKind.BULK_EMAIL else CAMPAIGN_FIGURES

    def job_controls(self, campaign: Campaign):
        return BULK_EMAIL_CONTROLS if campaign.kind == CampaignKind.BULK_EMAIL else CAMPAIGN_CONTROLS

    def job_links(self, campaign: Campaign):
        messages_url = reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={campaign.pk}"
        # A draft made through the API, or left half-way through the wizard, goes on from here.
        startable = tuple(admin_wizard.STARTABLE)
        steps = [JobLink(label, reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk]), when=startable)
                 for label, name in (("Dry run", "dry_run"), ("Test send", "test_send"), ("Start…", "confirm_start"))]
        return [
            *steps,
            JobLink("Its messages", messages_url),
            JobLink("Its failed messages", messages_url + "&status__exact=failed", if_positive="failed"),
        ]

    @admin.display(description="subject")
    def subject_display(self, campaign: Campaign) -> str:
        # A subject of the campaign's own wins over the template's, as when it is sent.
        if campaign.template_id and not campaign.subject:
            return self._from_template(campaign, format_html("{}", campaign.template.subject or "-"))
        return campaign.subject or "-"

    @admin.display(description="message content")
    def content_display(self, campaign: Campaign) -> str:
        if not campaign.template_id:
            return format_html("<pre class='campaign-content'>{}</pre>", campaign.message_content) if campaign.message_content else "-"
        template = campaign.template
        parts = format_html("<pre class='campaign-content' aria-label='Text body'>{}</pre>", template.body_text) if template.body_text else ""
        if template.body_html:
            parts = format_html("{}<p>HTML body:</p><pre class='campaign-content' aria-label='HTML body'>{}</pre>",
                                parts, template.body_html)
        return self._from_template(campaign, parts or "-")

    def _from_template(self, campaign: Campaign, value: str) -> str:
        # The campaign sends what the template says now, so show that, and say where it comes from.
        url = reverse("admin:campaigns_messagetemplate_change", args=[campaign.template_id])
        return format_html('{}<div class="help">from template <a href="{}">\'{}\'</a></div>', value, url,
                           campaign.template.name)

    @admin.display(description="audience")
    def audience(self, campaign: Campaign) -> str:
        names = [lst.name for lst in campaign.lists.all()]
        if campaign.import_job_id:
            names.append(f"import {campaign.import_job_id}")
        who = "active and inactive subscribers" if campaign.include_inactive else "active subscribers"
        return f"{', '.join(names)} ({who})" if names else "explicit recipients"

    @admin.display(description="fan-out runs")
    def fan_out_display(self, campaign: Campaign) -> str:
        # The runs that wrote (or tried to write) its messages: more than one means a worker died.
        if not campaign.fan_out_attempts:
            return "-"
        text = f"{campaign.fan_out_attempts} of {settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS} allowed"
        if campaign.fan_out_error:
            text += f"; the last one raised {campaign.fan_out_error}"
        return text

    @admin.display(description="job details")
    def job_data_display(self, campaign: Campaign) -> str:
        return key_value_table(campaign.job_data)

    @admin.action(description="Start selected campaigns (after a confirmation of count and pace)", permissions=["change"])
    def campaign_start_action(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> HttpResponse | None:
        return admin_wizard.start_action(self, request, queryset)

    @admin.action(description="Send a test of the selected campaigns to my own address", permissions=["change"])
    def test_send_to_me(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            address = request.user.email if campaign.channel == "email" else ""
            if not address:
                self.message_user(request, f"{campaign.name}: set an email address on your user first "
                                  "(SMS tests go through the API's test-send with a phone number)", level=messages.WARNING)
                continue
            try:
                result = services.campaign_test_send(actor=admin_actor(request), campaign=campaign, recipient=address)
            except ServiceError as exc:
                self.message_user(request, f"{campaign.name}: {exc.message}", level=messages.ERROR)
                continue
            self.message_user(request, f"{campaign.name}: test sent to {result['recipient']}.")

    @admin.display(description="progress")
    def progress_bar(self, campaign: Campaign) -> str:
        progress = campaign_figures(campaign)["progress"]
        return format_html('<progress max="100" value="{}"></progress> {}%', progress, progress)


@admin.register(Message)
class MessageAdmin(OwnedAdmin):
    list_display = ("id", "recipient", "channel", "status", "attempts", "last_error", "sent_at")
    list_filter = ("status", "channel")
    search_fields = ("=recipient",)
    raw_id_fields = ("campaign", "batch", "subscriber", "template")

    def get_queryset(self, request: HttpRequest):
        qs = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return qs
        return qs.filter(Q(campaign__owner=request.user) | Q(batch__owner=request.user))
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False


class RateLimitForm(forms.ModelForm):
    # The dispatcher looks its bucket up by the channel's value ("email", "sms"): a free-text
    # name such as "Email" would save and limit nothing.
    name = forms.ChoiceField(choices=Channel.choices, label="Channel",
                             help_text="The channel this row limits; one row per channel.")

    class Meta:
        model = RateLimit
        fields = ("name", "rate", "burst", "enabled")
        help_texts = {
            "rate": "Sends per second, shared by every worker; 0 pauses sending on this channel.",
            "burst": "How many may go at once after a quiet spell; then sending settles to the rate.",
            "enabled": "On: this rate and burst apply. Off: no limit at all.",
        }

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if RateLimit.objects.filter(name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"The {name} channel already has a rate limit: change that row instead.")
        return name


@admin.register(RateLimit)
class RateLimitAdmin(admin.ModelAdmin):
    """Edit a channel's rate here; workers read it on their next token, no restart needed."""

    form = RateLimitForm
    list_display = ("name", "in_force", "rate", "burst", "enabled")
    list_editable = ("rate", "burst", "enabled")

    @admin.display(description="in force")
    def in_force(self, bucket: RateLimit) -> str:
        if not bucket.enabled:
            return "Disabled: no limit"
        if bucket.rate <= 0:
            return "Enabled: sending paused (rate 0)"
        return f"Enabled: {bucket.rate:g} per second, burst {bucket.burst}"

    def save_model(self, request: HttpRequest, obj: RateLimit, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        ratelimit.clear_config_cache()  # this process at once; workers within CONFIG_SECONDS

    # Shared by every owner: only superusers see or change it.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser


BATCH_FIGURES = (
    Figure("total_items", "Items"), Figure("sent", "Sent"), Figure("failed", "Failed"), Figure("skipped", "Skipped"),
    Figure("unsent", "Still to send"),
)
BATCH_CONTROLS = (
    JobControl("retry", "Retry the failed items", lambda actor, batch: batches.batch_retry(actor=actor, batch=batch),
               when=("failed",), done="Failed items queued again; the batch is sent next in its stream."),
)


@admin.register(MessageBatch)
class MessageBatchAdmin(JobPageMixin, OwnedAdmin):
    """Batches of the batch API in their streams' order; retry re-sends only the failed items."""

    list_display = ("batch_id", "sequence", "owner", "status", "progress_bar", "total_items", "sent_count",
                    "failed_count", "skipped_count", "created_at", "committed_at", "items_link")
    list_filter = ("status",)
    search_fields = ("=batch_id",)
    list_select_related = ("owner",)
    fields = ("batch_id", "sequence", "owner", "created_at", "committed_at", "processing_time_ms", "vendor_counts_display")
    readonly_fields = fields
    actions = ["retry_failed_items"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # batches come through POST /api/v1/batch/process

    def has_change_permission(self, request: HttpRequest, obj: MessageBatch | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: MessageBatch | None = None) -> bool:
        return False  # its items are messages: kept until messages are purged

    def job_id(self, batch: MessageBatch) -> str:
        return batch.batch_id

    def job_figures(self, batch: MessageBatch):
        return BATCH_FIGURES

    def job_controls(self, batch: MessageBatch):
        return BATCH_CONTROLS

    def job_links(self, batch: MessageBatch):
        return [JobLink("Its items, in order", reverse("admin:campaigns_message_changelist") + f"?batch__id__exact={batch.pk}")]

    @admin.display(description="items per vendor")
    def vendor_counts_display(self, batch: MessageBatch) -> str:
        return key_value_table(batch.vendor_counts)

    @admin.display(description="progress")
    def progress_bar(self, batch: MessageBatch) -> str:
        return format_html('<progress max="100" value="{}"></progress> {}%', batch.progress, batch.progress)

    @admin.display(description="items")
    def items_link(self, batch: MessageBatch) -> str:
        url = reverse("admin:campaigns_message_changelist") + f"?batch__id__exact={batch.pk}"
        return format_html('<a href="{}">items</a>', url)

    @admin.action(description="Retry the failed items of selected failed batches", permissions=["change"])
    def retry_failed_items(self, request: HttpRequest, queryset: QuerySet[MessageBatch]) -> None:
        for batch in queryset:
            try:
                requeued = batches.batch_retry(actor=admin_actor(request), batch=batch)
            except ServiceError as exc:
                self.report(request, exc)
                continue
            self.message_user(request, f"Batch {batch.batch_id}: {requeued} failed items requeued.")


@admin.register(OutboxSwitch)
class OutboxSwitchAdmin(admin.ModelAdmin):
    """The batch publisher's switch (every owner's streams): start and stop are actions."""

    list_display = ("__str__", "enabled", "changed_at", "changed_by")
    readonly_fields = ("enabled", "changed_at", "changed_by")
    actions = ["start_publisher", "stop_publisher"]

    def get_queryset(self, request: HttpRequest):
        batches.outbox_switch()  # the row exists from the first look
        return super().get_queryset(request)

    def _controls(self, request: HttpRequest) -> bool:
        return request.user.has_perm("campaigns.control_outbox")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._controls(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._controls(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and self._controls(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Start the batch publisher", permissions=["change"])
    def start_publisher(self, request: HttpRequest, queryset) -> None:
        batches.outbox_set(actor=admin_actor(request), enabled=True)
        self.message_user(request, "Batch publisher started.")

    @admin.action(description="Stop the batch publisher (workers stop within seconds)", permissions=["change"])
    def stop_publisher(self, request: HttpRequest, queryset) -> None:
        batches.outbox_set(actor=admin_actor(request), enabled=False)
        self.message_user(request, "Batch publisher stopped; unsent items stay pending.")
