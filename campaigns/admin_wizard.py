"""The campaign wizard of the admin: channel -> audience -> message -> dry run -> test send ->
confirmation -> start now or at a time; and the start confirmation the change list's "Start"
action shows too. Every step parses a form and calls the service the API calls; a service error
becomes a form error, never a server error.

Where the state lives: the first two steps only choose (name, channel, lists), so they are kept in
the session; the third step calls campaign_create with everything it needs, which validates the
whole campaign at once (content or template, audience, merge fields) exactly as the API does. From
then on the draft campaign itself is the state: dry run, test send and start are the existing
services on it, so no step needs a service of its own and a draft left half-way is an ordinary
draft in the change list."""

from collections.abc import Callable, Iterable

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from campaigns import selectors, services
from campaigns.models import Campaign, CampaignStatus, MessageTemplate
from inboxerr.admin_tools import admin_actor, format_seconds
from inboxerr.errors import NotFound, ServiceError
from subscribers.models import Channel, SubscriberList

SESSION_KEY = "inboxerr_campaign_wizard"
STARTABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
STEPS = (
    ("channel", "Channel"), ("audience", "Audience"), ("content", "Message"),
    ("dry_run", "Dry run"), ("test_send", "Test send"), ("confirm", "Confirm and start"),
)


# --- Forms ---------------------------------------------------------------------------------------


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=200, label="Campaign name",
                           help_text="For you and your colleagues; recipients never see it.")
    channel = forms.ChoiceField(choices=Channel.choices, widget=forms.RadioSelect, initial=Channel.EMAIL,
                                label="Channel")


class AudienceForm(forms.Form):
    lists = forms.ModelMultipleChoiceField(
        queryset=SubscriberList.objects.none(), widget=forms.CheckboxSelectMultiple, label="Lists",
        help_text="Addresses on several lists get one message. Suppressed, unsubscribed, bounced and "
                  "inactive subscribers are skipped; the dry run counts them.",
        error_messages={"required": "Choose at least one list.", "invalid_choice": "List %(value)s not found.",
                        "invalid_pk_value": "List %(pk)s not found."},
    )
    include_inactive = forms.BooleanField(
        required=False, label="Also send to inactive subscribers",
        help_text="For a re-engagement send. Unsubscribed, bounced and suppressed addresses are never sent to.",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lists"].queryset = owned_lists(owner)
        self.fields["lists"].label_from_instance = lambda lst: f"{lst.name} ({lst.subscriber_count:,} subscribers)"


class ContentForm(forms.Form):
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.none(), required=False, label="Template",
        empty_label="(none: write the message below)",
        help_text="One of your active templates for this channel, or leave it and write the message.",
        error_messages={"invalid_choice": "Template not found (or not an active template for this channel)."},
    )
    subject = forms.CharField(max_length=500, required=False, label="Subject",
                              help_text="Merge fields work here too: Hello {{ name }}.")
    message_content = forms.CharField(
        max_length=100_000, required=False, label="Message", widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text='Merge fields: {{ name }}, {{ email }}, any field of your lists; {{ field|default:"..." }} '
                  "for recipients without it.",
    )

    def __init__(self, *args, owner, channel: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = MessageTemplate.objects.filter(owner=owner, channel=channel, is_active=True)
        if channel == Channel.SMS:
            # Kept (hidden) so a subject sent anyway reaches the service, which refuses it.
            self.fields["subject"].widget = forms.HiddenInput()
            self.fields["message_content"].help_text += " The dry run shows the SMS segments it costs."


class TestSendForm(forms.Form):
    recipient = forms.CharField(max_length=254, label="Send a test to")

    def __init__(self, *args, channel: str, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["recipient"]
        if channel == Channel.SMS:
            field.widget.input_type = "tel"
            field.help_text = "A phone number (E.164, or national for the default region)."
        else:
            field.widget.input_type = "email"
            field.help_text = "An email address; the subject starts with [TEST]."


class StartForm(forms.Form):
    when = forms.ChoiceField(choices=[("now", "Start now"), ("scheduled", "Start at a scheduled time")],
                             widget=forms.RadioSelect, initial="now", label="When")
    scheduled_at = forms.DateTimeField(
        required=False, label="Scheduled time", help_text=f"Time zone {settings.TIME_ZONE}.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("when") == "scheduled" and not data.get("scheduled_at"):
            self.add_error("scheduled_at", "Give the time to start at.")
        if data.get("when") == "now" and data.get("scheduled_at"):
            # A time typed but "Start now" left ticked: ask, rather than send hours early.
            self.add_error("scheduled_at", "You gave a time: choose 'Start at a scheduled time', or clear it to start now.")
        return data


# --- Helpers -------------------------------------------------------------------------------------


def owned_lists(owner):
    # The owner's own lists, for a superuser too: campaign_create finds lists by owner and name,
    # so offering someone else's list would only fail one step later.
    return SubscriberList.objects.filter(owner=owner)


def form_error(form: forms.Form, exc: ServiceError, fields: dict[str, str]) -> None:
    """Show a service error on the form field it names (its "field: " prefix dropped there)."""
    name = fields.get(exc.field or "")
    if name in form.fields and not form.fields[name].widget.is_hidden:
        form.add_error(name, exc.message.removeprefix(f"{exc.field}: "))
    else:
        form.add_error(None, exc.message)


def duration_text(seconds: float | None) -> str:
    return "" if seconds is None else f"about {format_seconds(max(seconds, 1))}"


def pace_text(estimate: dict) -> str:
    if estimate["rate"] is None:
        return f"no rate limit on {estimate['channel']}: as fast as the workers send"
    if not estimate["rate"]:
        return f"sending on {estimate['channel']} is paused (rate 0): nothing goes out until the rate is raised"
    return f"{estimate['rate']:g} per second on {estimate['channel']} (burst {estimate['burst']})"


def _context(request: HttpRequest, model_admin, title: str, step: str, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "title": title,
        "steps": [{"key": key, "label": label, "current": key == step} for key, label in STEPS],
        "in_wizard": step in dict(STEPS), **extra,
    }


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(f"campaigns.{perm}_campaign"):
        raise PermissionDenied


def _campaign(request: HttpRequest, object_id: str) -> Campaign:
    try:
        return selectors.campaign_get(user=request.user, campaign_id=object_id)
    except NotFound:
        raise Http404("Campaign not found") from None


def _url(name: str, *args) -> str:
    return reverse(f"admin:campaigns_campaign_{name}", args=args)


def _draft(request: HttpRequest) -> dict:
    return dict(request.session.get(SESSION_KEY) or {})


def _render(request: HttpRequest, template: str, context: dict) -> TemplateResponse:
    return TemplateResponse(request, f"admin/campaigns/wizard/{template}", context)


# --- Steps 1-3: choose, then create the draft ----------------------------------------------------


def channel_step(request: HttpRequest, model_admin) -> HttpResponse:
    _require(request, "add")
    draft = _draft(request)
    form = ChannelForm(request.POST or None, initial=draft or None)
    if request.method == "POST" and form.is_valid():
        keep = draft.get("list_ids") if draft.get("channel") == form.cleaned_data["channel"] else None
        request.session[SESSION_KEY] = {**form.cleaned_data, "list_ids": keep}
        return HttpResponseRedirect(_url("wizard_audience"))
    return _render(request, "channel.html", _context(request, model_admin, "New campaign: channel", "channel", form=form))


def audience_step(request: HttpRequest, model_admin) -> HttpResponse:
    _require(request, "add")
    draft = _draft(request)
    if not draft.get("channel"):
        return HttpResponseRedirect(_url("wizard"))
    initial = ({"lists": draft["list_ids"], "include_inactive": draft.get("include_inactive", False)}
               if draft.get("list_ids") else None)
    form = AudienceForm(request.POST or None, initial=initial, owner=request.user)
    if request.method == "POST" and form.is_valid():
        request.session[SESSION_KEY] = {**draft, "list_ids": [lst.pk for lst in form.cleaned_data["lists"]],
                                        "include_inactive": form.cleaned_data["include_inactive"]}
        return HttpResponseRedirect(_url("wizard_content"))
    return _render(request, "audience.html", _context(
        request, model_admin, "New campaign: audience", "audience", form=form, draft=draft,
        has_lists=form.fields["lists"].queryset.exists(),
    ))


def content_step(request: HttpRequest, model_admin) -> HttpResponse:
    _require(request, "add")
    draft = _draft(request)
    if not draft.get("list_ids"):
        return HttpResponseRedirect(_url("wizard_audience" if draft.get("channel") else "wizard"))
    lists = list(owned_lists(request.user).filter(pk__in=draft["list_ids"]))
    form = ContentForm(request.POST or None, owner=request.user, channel=draft["channel"])
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = services.campaign_create(
                actor=admin_actor(request), owner=request.user, name=draft["name"], channel=draft["channel"],
                template_id=data["template"].pk if data["template"] else None,
                message_content=data["message_content"], subject=data["subject"],
                list_names=[lst.name for lst in lists], include_inactive=draft.get("include_inactive", False),
            )
        except ServiceError as exc:
            form_error(form, exc, {"template_id": "template", "message_content": "message_content", "subject": "subject"})
        else:
            request.session.pop(SESSION_KEY, None)
            messages.success(request, f"Draft campaign '{campaign.name}' created; nothing is sent until you start it.")
            return HttpResponseRedirect(_url("dry_run", campaign.pk))
    return _render(request, "content.html", _context(
        request, model_admin, "New campaign: message", "content", form=form, draft=draft, lists=lists,
        templates=form.fields["template"].queryset.only("pk", "name", "subject", "body_text", "body_html"),
        chosen=str(form["template"].value() or ""),
    ))


# --- Steps 4-6 on the draft ----------------------------------------------------------------------


# The HTML preview shows the email as a mail client would, in a sandboxed frame where no script
# runs; the frame inherits this page's Content-Security-Policy, so the page lets the email's inline
# styles and its images on other sites through.
@csp_update({"style-src": [UNSAFE_INLINE], "img-src": ["https:"]})
def dry_run_step(request: HttpRequest, model_admin, object_id: str) -> HttpResponse:
    _require(request, "view")
    campaign = _campaign(request, object_id)
    result = services.campaign_dry_run(campaign=campaign)
    preview = services.campaign_preview(campaign=campaign)
    return _render(request, "dry_run.html", _context(
        request, model_admin, f"Dry run of '{campaign.name}'", "dry_run", campaign=campaign, result=result,
        preview=preview, startable=campaign.status in STARTABLE,
        missing=sorted(result["missing_merge_fields_in_sample"].items()),
    ))


def test_send_step(request: HttpRequest, model_admin, object_id: str) -> HttpResponse:
    _require(request, "change")
    campaign = _campaign(request, object_id)
    initial = {"recipient": request.user.email} if campaign.channel == Channel.EMAIL else None
    form = TestSendForm(request.POST or None, initial=initial, channel=campaign.channel)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.campaign_test_send(actor=admin_actor(request), campaign=campaign,
                                                 recipient=form.cleaned_data["recipient"])
        except ServiceError as exc:
            form_error(form, exc, {"recipient": "recipient"})
        else:
            messages.success(request, f"Test sent to {result['recipient']}.")
            return HttpResponseRedirect(_url("test_send", campaign.pk))
    return _render(request, "test_send.html", _context(
        request, model_admin, f"Test send of '{campaign.name}'", "test_send", campaign=campaign, form=form,
        startable=campaign.status in STARTABLE,
    ))


def confirm_step(request: HttpRequest, model_admin, object_id: str) -> HttpResponse:
    _require(request, "change")
    campaign = _campaign(request, object_id)
    form = StartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if start_confirmed(request, [campaign], form):
            return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    return confirmation_page(request, model_admin, [campaign], form, step="confirm",
                             cancel_url=_url("test_send", campaign.pk))


# --- The start confirmation: the wizard's last step and the change list's "Start" action --------


def confirmation_rows(campaigns: Iterable[Campaign]) -> tuple[list[dict], list[dict]]:
    """Per campaign: what a start would queue now (the dry run's count) and how long it takes at
    the channel's rate; per channel, the total when several campaigns share its rate limit."""
    rows, per_channel = [], {}
    for campaign in campaigns:
        startable = campaign.status in STARTABLE
        count = services.campaign_dry_run(campaign=campaign)["would_queue"] if startable else 0
        estimate = selectors.send_estimate(channel=campaign.channel, count=count)
        rows.append({"campaign": campaign, "startable": startable, "count": count, "pace": pace_text(estimate),
                     "duration": duration_text(estimate["seconds"])})
        if startable:
            per_channel.setdefault(campaign.channel, []).append(count)
    totals = []
    for channel, counts in per_channel.items():
        if len(counts) > 1:
            estimate = selectors.send_estimate(channel=channel, count=sum(counts))
            totals.append({"channel": channel, "campaigns": len(counts), "count": sum(counts),
                           "duration": duration_text(estimate["seconds"])})
    return rows, totals


def confirmation_page(request: HttpRequest, model_admin, campaigns: list[Campaign], form: StartForm, *, step: str,
                      cancel_url: str, hidden: list[tuple[str, str]] | None = None) -> TemplateResponse:
    rows, totals = confirmation_rows(campaigns)
    title = f"Start '{campaigns[0].name}'?" if len(campaigns) == 1 else f"Start {len(campaigns)} campaigns?"
    return _render(request, "confirm.html", _context(
        request, model_admin, title, step, rows=rows, totals=totals, form=form, cancel_url=cancel_url,
        hidden=hidden or [], any_startable=any(row["startable"] for row in rows),
    ))


def start_confirmed(request: HttpRequest, campaigns: list[Campaign], form: StartForm) -> int:
    """Start (or schedule) each campaign through its service; report each outcome. Returns how
    many were started or scheduled; a single campaign's refusal also lands on the form."""
    scheduled_at = form.cleaned_data["scheduled_at"] if form.cleaned_data["when"] == "scheduled" else None
    done = 0
    for campaign in campaigns:
        try:
            if scheduled_at:
                services.campaign_schedule(actor=admin_actor(request), campaign=campaign, scheduled_at=scheduled_at)
            else:
                services.campaign_start(actor=admin_actor(request), campaign=campaign)
        except ServiceError as exc:
            if len(campaigns) == 1:
                form_error(form, exc, {"scheduled_at": "scheduled_at"})
            else:
                messages.error(request, f"{campaign.name}: {exc.message}")
            continue
        done += 1
        verb = f"scheduled for {scheduled_at:%Y-%m-%d %H:%M} {settings.TIME_ZONE}" if scheduled_at else "starting"
        messages.success(request, f"Campaign '{campaign.name}' {verb}.")
    return done


def start_action(model_admin, request: HttpRequest, queryset) -> HttpResponse | None:
    """The change list's Start: first the confirmation page (like Django's delete confirmation),
    and only its confirming POST starts anything."""
    campaigns = list(queryset.select_related("template").order_by("created_at"))
    hidden = [("action", "campaign_start_action"), *[("_selected_action", str(c.pk)) for c in campaigns],
              ("confirm", "yes")]
    form = StartForm(request.POST if request.POST.get("confirm") == "yes" else None)
    if form.is_bound and form.is_valid():
        start_confirmed(request, [c for c in campaigns if c.status in STARTABLE], form)
        skipped = [c.name for c in campaigns if c.status not in STARTABLE]
        if skipped:
            messages.warning(request, f"Not started (not a draft or scheduled): {', '.join(skipped)}")
        return None  # back to the change list, with the messages
    return confirmation_page(request, model_admin, campaigns, form, step="", cancel_url=request.get_full_path(),
                             hidden=hidden)


def urls(model_admin) -> list:
    def view(function: Callable, name: str, route: str):
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            return function(request, model_admin, *args, **kwargs)

        return path(route, model_admin.admin_site.admin_view(wrapped), name=f"campaigns_campaign_{name}")

    return [
        view(channel_step, "wizard", "wizard/"),
        view(audience_step, "wizard_audience", "wizard/audience/"),
        view(content_step, "wizard_content", "wizard/message/"),
        view(dry_run_step, "dry_run", "<uuid:object_id>/dry-run/"),
        view(test_send_step, "test_send", "<uuid:object_id>/test-send/"),
        view(confirm_step, "confirm_start", "<uuid:object_id>/start/"),
    ]
