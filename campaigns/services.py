"""Templates and campaigns: create, validate merge fields against the audience, start (one
set-based fan-out), pause, resume, cancel. Sending is the dispatcher's (dispatch.py)."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.tasks import async_task

from audit.services import audit_record
from campaigns.channels.base import OutgoingMessage, SendError
from campaigns.channels.registry import backend_for
from campaigns.models import (
    OPEN_BATCH_STATUSES, BatchStatus, Campaign, CampaignStatus, DispatchSlot, Message, MessageBatch, MessageStatus,
    MessageTemplate,
)
from campaigns.rendering import (
    TemplateError, check_braces, compile_parts, missing_variables, recipient_context, recipient_lacks, template_variables,
)
from campaigns.unsubscribe import unsubscribe_headers, unsubscribe_url
from imports.models import ImportJob
from inboxerr.actors import Actor
from inboxerr.crashes import crashed_reason, error_summary
from inboxerr.errors import Conflict, InvalidInput, NotFound
from inboxerr.webhooks.events import WebhookEvent
from inboxerr.webhooks.services import event_emit
from subscribers.models import SUPPRESSING_STATUSES, Channel, Subscriber, SubscriberList, SubscriberStatus, Suppression
from subscribers.normalize import RecordError, normalize_email, normalize_phone
from subscribers.selectors import analyze_fields

TEMPLATE_FIELDS = ("name", "channel", "subject", "body_text", "body_html", "is_active")


def _template_snapshot(template: MessageTemplate) -> dict:
    return {name: getattr(template, name) for name in TEMPLATE_FIELDS}


def check_template(*, channel: str, subject: str, body_text: str, body_html: str) -> dict[str, bool]:
    if channel not in Channel.values:
        raise InvalidInput(f"channel: must be one of {', '.join(Channel.values)}", field="channel")
    if not (body_text or "").strip() and not (body_html or "").strip():
        raise InvalidInput("body_text: a template needs a text or an HTML body", field="body_text")
    if channel == Channel.SMS and body_html:
        raise InvalidInput("body_html: SMS templates have a text body only", field="body_html")
    try:
        for part, source in (("subject", subject), ("body_text", body_text), ("body_html", body_html)):
            check_braces(source or "", part)
        compiled = compile_parts(subject=subject or "", body_text=body_text or "", body_html=body_html or "")
    except TemplateError as exc:
        raise InvalidInput(str(exc), field=exc.part) from None
    return template_variables(compiled)


@transaction.atomic
def template_create(*, actor: Actor, owner, name: str, channel: str = Channel.EMAIL, subject: str = "",
                    body_text: str = "", body_html: str = "", is_active: bool = True) -> MessageTemplate:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name: is required", field="name")
    variables = check_template(channel=channel, subject=subject, body_text=body_text, body_html=body_html)
    if MessageTemplate.objects.filter(owner=owner, name=name).exists():
        raise Conflict(f"Template '{name}' already exists", field="name")
    template = MessageTemplate.objects.create(
        owner=owner, name=name, channel=channel, subject=subject or "", body_text=body_text or "",
        body_html=body_html or "", is_active=is_active, variables=sorted(variables),
    )
    audit_record(
        actor=actor, action="create", entity_type="template", entity_id=template.pk, owner_id=owner.pk,
        user_action=f"Created template '{name}'", after=_template_snapshot(template),
    )
    return template


@transaction.atomic
def template_update(*, actor: Actor, template: MessageTemplate, data: dict) -> MessageTemplate:
    template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
    before = _template_snapshot(template)
    merged = {**before, **{k: v for k, v in data.items() if k in TEMPLATE_FIELDS}}
    variables = check_template(
        channel=merged["channel"], subject=merged["subject"], body_text=merged["body_text"], body_html=merged["body_html"]
    )
    if merged["name"] != template.name and MessageTemplate.objects.filter(owner_id=template.owner_id, name=merged["name"]).exists():
        raise Conflict(f"Template '{merged['name']}' already exists", field="name")
    for key, value in merged.items():
        setattr(template, key, value if value is not None else "")
    template.variables = sorted(variables)
    template.save()
    audit_record(
        actor=actor, action="update", entity_type="template", entity_id=template.pk, owner_id=template.owner_id,
        user_action=f"Updated template '{template.name}'", before=before, after=_template_snapshot(template),
    )
    return template


@transaction.atomic
def template_delete(*, actor: Actor, template: MessageTemplate) -> None:
    if Campaign.objects.filter(template=template).exists():
        raise Conflict(f"Template '{template.name}' is used by campaigns; deactivate it instead", field="template_id")
    open_batches = MessageBatch.objects.filter(owner_id=template.owner_id, status__in=OPEN_BATCH_STATUSES)
    if Message.objects.filter(batch__in=open_batches, template=template,
                              status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]).exists():
        raise Conflict(f"Template '{template.name}' is used by batch items not sent yet", field="template_id")
    before, pk, owner_id = _template_snapshot(template), template.pk, template.owner_id
    template.delete()
    audit_record(
        actor=actor, action="delete", entity_type="template", entity_id=pk, owner_id=owner_id,
        user_action=f"Deleted template '{before['name']}'", before=before,
    )


def template_required_variables(template: MessageTemplate | None, *, subject: str = "", content: str = "") -> dict[str, bool]:
    if template is not None:
        compiled = compile_parts(subject=template.subject, body_text=template.body_text, body_html=template.body_html)
    else:
        compiled = compile_parts(subject=subject, body_text=content)
    return template_variables(compiled)


# --- Campaigns -----------------------------------------------------------------------------------


def _campaign_snapshot(campaign: Campaign) -> dict:
    return {
        "name": campaign.name, "channel": campaign.channel, "status": campaign.status,
        "template_id": campaign.template_id, "subject": campaign.subject,
        "lists": [lst.name for lst in campaign.lists.all()], "import_id": str(campaign.import_job_id or ""),
    }


@transaction.atomic
def campaign_create(
    *,
    actor: Actor,
    owner,
    name: str,
    channel: str,
    template_id: int | None = None,
    message_content: str = "",
    subject: str = "",
    list_names: list[str] | None = None,
    import_id: str | None = None,
    scheduled_at=None,
    explicit_recipients: bool = False,
    include_inactive: bool = False,
) -> Campaign:
    """Seed 001: exactly one of template or content; an audience; merge fields the audience has.
    With `explicit_recipients` the caller writes the messages itself (from-csv, bulk email)."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name: is required", field="name")
    if channel not in Channel.values:
        raise InvalidInput(f"channel: must be one of {', '.join(Channel.values)}", field="channel")
    has_content = bool((message_content or "").strip())
    if template_id and has_content:
        raise InvalidInput("Give either template_id or message_content, not both", field="template_id")
    if not template_id and not has_content:
        raise InvalidInput("A campaign needs message content: give template_id or message_content", field="message_content")
    template = None
    if template_id:
        template = MessageTemplate.objects.filter(pk=template_id, owner=owner).first()
        if template is None:
            raise InvalidInput(f"template_id: template {template_id} not found", field="template_id")
        if not template.is_active:
            raise InvalidInput(f"template_id: template '{template.name}' is not active", field="template_id")
        if template.channel != channel:
            raise InvalidInput(f"template_id: template '{template.name}' is for {template.channel}, not {channel}", field="template_id")
    else:
        try:
            check_braces(subject or "", "subject")
            check_braces(message_content or "", "message_content")
            compile_parts(subject=subject, body_text=message_content)
        except TemplateError as exc:
            field = "subject" if exc.part == "subject" else "message_content"
            raise InvalidInput(f"{field}: {exc.message}", field=field) from None
    if channel == Channel.EMAIL and not (subject or (template and template.subject)):
        raise InvalidInput("subject: an email campaign needs a subject (or a template with one)", field="subject")
    if channel == Channel.SMS and (subject or "").strip():
        # Refused rather than dropped: an operator who typed one expects it to be seen somewhere.
        raise InvalidInput("subject: SMS messages have no subject; leave it empty", field="subject")

    lists = []
    for list_name in list_names or []:
        lst = SubscriberList.objects.filter(owner=owner, name=list_name).first()
        if lst is None:
            raise InvalidInput(f"list_names: list '{list_name}' not found", field="list_names")
        lists.append(lst)
    job = None
    if import_id:
        job = ImportJob.objects.filter(pk=import_id, owner=owner).first()
        if job is None:
            raise InvalidInput(f"import_id: import {import_id} not found", field="import_id")
    if not lists and job is None and not explicit_recipients:
        raise InvalidInput("list_names: a campaign needs an audience: list_names and/or import_id", field="list_names")

    required = template_required_variables(template, subject=subject, content=message_content)
    audience_lists = [lst.name for lst in lists] + ([job.list_name] if job and job.list_id else [])
    fields = analyze_fields(user=owner, list_names=sorted(set(audience_lists))) if audience_lists else {"standard": [], "custom": []}
    missing = [] if explicit_recipients else missing_variables(required, set(fields["standard"]) | set(fields["custom"]))
    if missing:
        raise InvalidInput(
            f"Merge fields not found in the audience: {', '.join(missing)} "
            "(add the fields, or give them a default: {{ field|default:\"...\" }})",
            field="message_content" if template is None else "template_id",
            extra={"missing_fields": missing},
        )

    campaign = Campaign.objects.create(
        owner=owner, name=name, channel=channel, template=template, message_content=message_content or "",
        subject=subject or "", import_job=job, scheduled_at=scheduled_at, include_inactive=include_inactive,
        status=CampaignStatus.SCHEDULED if scheduled_at else CampaignStatus.DRAFT,
    )
    campaign.lists.set(lists)
    audit_record(
        actor=actor, action="create", entity_type="campaign", entity_id=campaign.pk, owner_id=owner.pk,
        user_action=f"Created campaign '{name}'", after=_campaign_snapshot(campaign),
    )
    return campaign


def _transition(campaign: Campaign, *, allowed: tuple[str, ...], to: str, actor: Actor, verb: str, reason: str = "") -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in allowed:
        raise Conflict(f"Campaign '{campaign.name}' is {campaign.status}; cannot {verb} it", field="status")
    before = campaign.status
    campaign.status, campaign.status_reason = to, reason
    campaign.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(
        actor=actor, action="update", entity_type="campaign", entity_id=campaign.pk, owner_id=campaign.owner_id,
        user_action=f"{verb.capitalize()} campaign '{campaign.name}'" + (f": {reason}" if reason else ""),
        before={"status": before}, after={"status": to},
    )
    return campaign


@transaction.atomic
def campaign_start(*, actor: Actor, campaign: Campaign) -> Campaign:
    """Queue the fan-out; the request returns at once (202) and the campaign's id tracks it."""
    campaign = _transition(
        campaign, allowed=(CampaignStatus.DRAFT, CampaignStatus.SCHEDULED), to=CampaignStatus.STARTING,
        actor=actor, verb="start",
    )
    campaign.fan_out_claimed_at = timezone.now()  # the minute tick's grace runs from here
    campaign.save(update_fields=["fan_out_claimed_at"])
    transaction.on_commit(lambda: _fan_out_queue(campaign.pk))
    return campaign


@transaction.atomic
def campaign_pause(*, actor: Actor, campaign: Campaign, reason: str = "") -> Campaign:
    campaign = _transition(campaign, allowed=(CampaignStatus.RUNNING, CampaignStatus.STARTING), to=CampaignStatus.PAUSED,
                           actor=actor, verb="pause", reason=reason)
    event_emit(event=WebhookEvent.CAMPAIGN_PAUSED, owner_id=campaign.owner_id,
               payload={**campaign.event_payload(), "status": campaign.status, "reason": reason})
    return campaign


@transaction.atomic
def campaign_resume(*, actor: Actor, campaign: Campaign) -> Campaign:
    campaign = _transition(campaign, allowed=(CampaignStatus.PAUSED,), to=CampaignStatus.RUNNING, actor=actor, verb="resume")
    transaction.on_commit(kick_dispatchers)
    return campaign


@transaction.atomic
def campaign_cancel(*, actor: Actor, campaign: Campaign) -> Campaign:
    campaign = _transition(
        campaign,
        allowed=(CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.STARTING, CampaignStatus.RUNNING, CampaignStatus.PAUSED),
        to=CampaignStatus.CANCELLED, actor=actor, verb="cancel",
    )
    cancelled = Message.objects.filter(campaign=campaign, status=MessageStatus.QUEUED).update(status=MessageStatus.CANCELLED)
    Campaign.objects.filter(pk=campaign.pk).update(finished_at=timezone.now(), cancelled_count=F("cancelled_count") + cancelled)
    campaign.refresh_from_db()
    return campaign


@transaction.atomic
def campaign_schedule(*, actor: Actor, campaign: Campaign, scheduled_at) -> Campaign:
    """Start the campaign at `scheduled_at` instead of now: the minute tick starts it then
    (campaigns_start_scheduled). A scheduled campaign can be rescheduled or started at once."""
    if scheduled_at is None or scheduled_at <= timezone.now():
        raise InvalidInput("scheduled_at: give a time in the future", field="scheduled_at")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise Conflict(f"Campaign '{campaign.name}' is {campaign.status}; cannot schedule it", field="status")
    before = {"status": campaign.status, "scheduled_at": campaign.scheduled_at.isoformat() if campaign.scheduled_at else None}
    campaign.status, campaign.scheduled_at = CampaignStatus.SCHEDULED, scheduled_at
    campaign.save(update_fields=["status", "scheduled_at", "updated_at"])
    audit_record(
        actor=actor, action="update", entity_type="campaign", entity_id=campaign.pk, owner_id=campaign.owner_id,
        user_action=f"Scheduled campaign '{campaign.name}' for {scheduled_at.isoformat()}",
        before=before, after={"status": campaign.status, "scheduled_at": scheduled_at.isoformat()},
    )
    return campaign


def campaigns_start_scheduled() -> int:
    """Start scheduled campaigns whose time has come (the minute tick calls this)."""
    started = 0
    for campaign in Campaign.objects.filter(status=CampaignStatus.SCHEDULED, scheduled_at__lte=timezone.now()):
        try:
            campaign_start(actor=Actor.system(), campaign=campaign)
            started += 1
        except Conflict:
            continue  # started by someone else meanwhile
    return started


def kick_dispatchers(count: int | None = None) -> int:
    """Queue dispatcher runs (each loops while there is work, then ends), one per free slot: at
    most DISPATCH_WORKERS are queued or running at once, however often work arrives."""
    wanted = count or settings.DISPATCH_WORKERS
    now = timezone.now()
    hold = now + timedelta(seconds=settings.DISPATCH_RUN_SECONDS + 120)
    queued = 0
    for number in range(settings.DISPATCH_WORKERS):
        if queued == wanted:
            break
        DispatchSlot.objects.get_or_create(number=number)
        free = DispatchSlot.objects.filter(number=number).filter(Q(busy_until__isnull=True) | Q(busy_until__lt=now))
        if free.update(busy_until=hold):  # a checked claim: two kicks never take one slot
            async_task("campaigns.tasks.dispatch", number, task_name=f"dispatch-{number}")
            queued += 1
    return queued


def dispatch_slot_release(number: int) -> None:
    DispatchSlot.objects.filter(number=number).update(busy_until=None)


# --- Fan-out -------------------------------------------------------------------------------------

def skipped_statuses(campaign: Campaign) -> list[str]:
    """Subscriber statuses the campaign does not send to: unsubscribed and bounced always, inactive
    unless the campaign asked for them."""
    return [*sorted(SUPPRESSING_STATUSES), *([] if campaign.include_inactive else [SubscriberStatus.INACTIVE])]


def _skip_sql(campaign: Campaign) -> str:
    """The skip reason of a recipient row `s` (with its suppression `sp`), '' when it is sent to."""
    by_status = "".join(f"        WHEN s.status = '{status}' THEN '{status}'\n" for status in skipped_statuses(campaign))
    return f"""
    CASE
        WHEN s.addr = '' THEN 'no_address'
        WHEN sp.id IS NOT NULL THEN 'suppressed'
{by_status}        ELSE ''
    END"""


# Statuses in which a campaign that has not started (started_at unset) still owes its fan-out:
# paused or resumed before its run, it keeps the status the operator gave it.
FAN_OUT_OWED = (CampaignStatus.STARTING, CampaignStatus.PAUSED, CampaignStatus.RUNNING)
# How long the minute tick leaves a campaign alone after its fan-out was queued or taken up: a
# queued run may wait for a free worker, and a run has the row unlocked for a moment between its
# claim and its transaction. Past it, on PostgreSQL, an unlocked row means no run is alive.
FAN_OUT_GRACE = timedelta(minutes=2)


def _fan_out_owed(campaign: Campaign) -> bool:
    return campaign.started_at is None and campaign.status in FAN_OUT_OWED


def _fan_out_queue(campaign_id) -> None:
    async_task("campaigns.tasks.fan_out", str(campaign_id), task_name=f"fan-out-{campaign_id}")


def campaign_fan_out(*, campaign_id) -> Campaign:
    """Create one message per recipient in one statement: deduplicated by address across the
    campaign's lists; suppressed, unsubscribed, bounced, inactive or address-less recipients
    become `skipped` with the reason. Runs once: a repeat finds the campaign already running.

    The run is counted and committed before its long transaction begins, so a run whose worker
    dies leaves its count behind for the minute tick (campaigns_fan_out_recover)."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if not _fan_out_owed(campaign):
            return campaign
        Campaign.objects.filter(pk=campaign.pk).update(
            fan_out_attempts=F("fan_out_attempts") + 1, fan_out_claimed_at=timezone.now(), fan_out_error="")
    try:
        return _fan_out(campaign_id)
    except Exception as exc:
        # Rolled back with nothing written: kept for the reason shown if the campaign is parked.
        Campaign.objects.filter(pk=campaign_id).update(fan_out_error=error_summary(exc))
        raise


def _fan_out(campaign_id) -> Campaign:
    with transaction.atomic():
        # Held to the commit: the tick's SKIP LOCKED probe tells a live run by this lock.
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if not _fan_out_owed(campaign):  # another run finished it between our claim and now
            return campaign
        list_ids = list(campaign.lists.values_list("pk", flat=True))
        if campaign.total_count:  # recipients were given explicitly: the messages exist already
            total, skipped = campaign.total_count, campaign.skipped_count
        elif connection.vendor == "postgresql":
            total, skipped = _fan_out_postgres(campaign, list_ids)
        else:
            total, skipped = _fan_out_portable(campaign, list_ids)
        now = timezone.now()
        if total <= skipped:
            status = CampaignStatus.COMPLETED
        else:
            status = CampaignStatus.PAUSED if campaign.status == CampaignStatus.PAUSED else CampaignStatus.RUNNING
        Campaign.objects.filter(pk=campaign.pk).update(
            status=status, total_count=total, skipped_count=skipped, started_at=now,
            finished_at=now if status == CampaignStatus.COMPLETED else None, updated_at=now,
        )
        audit_record(
            actor=Actor.system(), action="update", entity_type="campaign", entity_id=campaign.pk, owner_id=campaign.owner_id,
            user_action=f"Campaign '{campaign.name}' queued {total - skipped:,} messages ({skipped:,} skipped)",
            after={"status": status, "total": total, "skipped": skipped},
        )
        event_emit(event=WebhookEvent.CAMPAIGN_STARTED, owner_id=campaign.owner_id,
                   payload={**campaign.event_payload(), "status": status, "total": total, "skipped": skipped})
        transaction.on_commit(kick_dispatchers)
    campaign.refresh_from_db()
    return campaign


def campaigns_fan_out_recover() -> dict[str, list[str]]:
    """The minute tick: a campaign that still owes its fan-out while no run of it is alive lost
    its run (the worker killed, out of memory, its host gone, or the queued task lost). It is
    queued again; once CAMPAIGN_MAX_FAN_OUT_ATTEMPTS runs have begun and none finished it is
    failed with the reason instead (see inboxerr/crashes.py), so a fan-out that kills every
    worker cannot loop. A run is alive, on PostgreSQL, while it holds the campaign's row lock;
    SQLite has no row locks, so there only a run older than the task timeout is surely over."""
    now = timezone.now()
    postgres = connection.vendor == "postgresql"
    quiet = FAN_OUT_GRACE if postgres else timedelta(seconds=settings.Q_CLUSTER["timeout"])
    owed = Campaign.objects.filter(started_at__isnull=True, status__in=FAN_OUT_OWED).filter(
        Q(fan_out_claimed_at__isnull=True) | Q(fan_out_claimed_at__lt=now - quiet)).order_by("created_at")
    result: dict[str, list[str]] = {"requeued": [], "failed": []}
    with transaction.atomic():
        for campaign in owed.select_for_update(skip_locked=True) if postgres else owed:
            if campaign.fan_out_attempts >= settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS:
                _fan_out_park(campaign, now)
                result["failed"].append(str(campaign.pk))
                continue
            campaign.fan_out_claimed_at = now
            campaign.save(update_fields=["fan_out_claimed_at", "updated_at"])
            lost = (f"run {campaign.fan_out_attempts} of {settings.CAMPAIGN_MAX_FAN_OUT_ATTEMPTS} did not finish"
                    if campaign.fan_out_attempts else "no worker took it up")
            audit_record(
                actor=Actor.system(), action="update", entity_type="campaign", entity_id=campaign.pk,
                owner_id=campaign.owner_id, user_action=f"Fan-out of campaign '{campaign.name}' queued again: {lost}",
                after={"fan_out_attempts": campaign.fan_out_attempts, "error": campaign.fan_out_error},
            )
            transaction.on_commit(lambda pk=campaign.pk: _fan_out_queue(pk))
            result["requeued"].append(str(campaign.pk))
    return result


def _fan_out_park(campaign: Campaign, now) -> None:
    """Fail a campaign whose every allowed fan-out run died, with the reason; the caller holds its row."""
    began = campaign.fan_out_claimed_at or campaign.updated_at
    last_error = campaign.fan_out_error or (
        "the worker stopped without finishing (killed, out of memory or restarted); "
        f"the last run began {began:%Y-%m-%d %H:%M:%S} UTC")
    reason = crashed_reason(crashes=campaign.fan_out_attempts, doing="fanning out this campaign's messages",
                            last_error=last_error)[:500]
    before = campaign.status
    campaign.status, campaign.status_reason, campaign.finished_at = CampaignStatus.FAILED, reason, now
    campaign.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
    audit_record(
        actor=Actor.system(), action="update", entity_type="campaign", entity_id=campaign.pk,
        owner_id=campaign.owner_id, user_action=f"Campaign '{campaign.name}' failed: {reason}",
        before={"status": before}, after={"status": campaign.status, "fan_out_attempts": campaign.fan_out_attempts},
    )


def _audience_where(campaign: Campaign, list_ids: list[int]) -> tuple[str, list]:
    clauses, params = [], []
    if list_ids:
        clauses.append("list_id = ANY(%s)")
        params.append(list_ids)
    if campaign.import_job_id:
        clauses.append("import_job_id = %s")
        params.append(campaign.import_job_id)
    # Neither: the campaign's recipients were written as messages when it was made (from a CSV).
    return " OR ".join(clauses) or "FALSE", params


def _fan_out_select(campaign: Campaign, list_ids: list[int]) -> tuple[str, list]:
    """One row per recipient to message: deduplicated by address, with its status and skip reason."""
    address = "email" if campaign.channel == Channel.EMAIL else "phone"
    where, params = _audience_where(campaign, list_ids)
    skip = _skip_sql(campaign)
    sql = f"""
        SELECT gen_random_uuid() AS uid, %s::uuid AS campaign_id, s.id AS subscriber_id, %s AS channel, s.addr AS recipient,
               '{{}}'::jsonb AS variables, CASE WHEN {skip} = '' THEN 'queued' ELSE 'skipped' END AS status,
               {skip} AS skip_reason
        FROM (
            SELECT DISTINCT ON (CASE WHEN addr = '' THEN 'id:' || id ELSE addr END) id, addr, status
            FROM (SELECT id, {address} AS addr, status FROM {Subscriber._meta.db_table} WHERE {where}) AS a
            ORDER BY CASE WHEN addr = '' THEN 'id:' || id ELSE addr END, id
        ) AS s
        LEFT JOIN {Suppression._meta.db_table} sp ON sp.owner_id = %s AND sp.channel = %s AND sp.address = s.addr
        ORDER BY s.id
    """
    return sql, [campaign.pk, campaign.channel, *params, campaign.owner_id, campaign.channel]


def _fan_out_postgres(campaign: Campaign, list_ids: list[int]) -> tuple[int, int]:
    select, params = _fan_out_select(campaign, list_ids)
    sql = f"""
        WITH inserted AS (
            INSERT INTO {Message._meta.db_table}
                (uid, campaign_id, subscriber_id, channel, recipient, variables, status, skip_reason, attempts,
                 last_error, provider_message_id, lease_token, sequence, segments, created_at)
            SELECT uid, campaign_id, subscriber_id, channel, recipient, variables, status, skip_reason,
                   0, '', '', '', 0, 0, now()
            FROM ({select}) AS f
            RETURNING status
        )
        SELECT count(*), count(*) FILTER (WHERE status = 'skipped') FROM inserted
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        total, skipped = cursor.fetchone()
    return total, skipped


class MessageWriter:
    """Buffers a campaign's messages and writes them 5,000 at a time, counting what it wrote."""

    BATCH = 5000

    def __init__(self, campaign: Campaign):
        self.campaign = campaign
        self.batch: list[Message] = []
        self.total = self.skipped = 0

    def add(self, *, recipient: str, skip_reason: str = "", subscriber_id: int | None = None,
            variables: dict | None = None) -> None:
        self.batch.append(Message(
            campaign=self.campaign, subscriber_id=subscriber_id, channel=self.campaign.channel, recipient=recipient,
            variables=variables or {}, status=MessageStatus.SKIPPED if skip_reason else MessageStatus.QUEUED,
            skip_reason=skip_reason,
        ))
        self.total += 1
        self.skipped += bool(skip_reason)
        if len(self.batch) >= self.BATCH:
            self.flush()

    def flush(self) -> tuple[int, int]:
        Message.objects.bulk_create(self.batch)
        self.batch = []
        return self.total, self.skipped


def _fan_out_portable(campaign: Campaign, list_ids: list[int]) -> tuple[int, int]:
    """The embedded default (SQLite): the same rules in batches through the ORM."""
    address = "email" if campaign.channel == Channel.EMAIL else "phone"
    qs = Subscriber.objects.none()
    if list_ids:
        qs = Subscriber.objects.filter(list_id__in=list_ids)
    if campaign.import_job_id:
        qs = qs | Subscriber.objects.filter(import_job_id=campaign.import_job_id)
    suppressed = set(
        Suppression.objects.filter(owner_id=campaign.owner_id, channel=campaign.channel).values_list("address", flat=True)
    )
    seen: set[str] = set()
    skipped = set(skipped_statuses(campaign))
    writer = MessageWriter(campaign)
    for sub_id, addr, status in qs.order_by("id").values_list("id", address, "status").iterator(chunk_size=5000):
        if addr and addr in seen:
            continue
        seen.add(addr)
        reason = (
            "no_address" if not addr else "suppressed" if addr in suppressed
            else status if status in skipped else ""
        )
        writer.add(recipient=addr, skip_reason=reason, subscriber_id=sub_id)
    return writer.flush()


# --- Operator actions: retry failed, test send, preview, dry run ---------------------------------


@transaction.atomic
def campaign_retry_failed(*, actor: Actor, campaign: Campaign) -> Campaign:
    """Requeue only the failed messages, with fresh attempts; a completed campaign runs again."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise Conflict(f"Campaign '{campaign.name}' is {campaign.status}; nothing to retry", field="status")
    requeued = Message.objects.filter(campaign=campaign, status=MessageStatus.FAILED).update(
        status=MessageStatus.QUEUED, attempts=0, next_attempt_at=None, last_error="", lease_token="", send_started_at=None
    )
    if not requeued:
        raise Conflict(f"Campaign '{campaign.name}' has no failed messages", field="status")
    campaign.failed_count = max(0, campaign.failed_count - requeued)
    if campaign.status == CampaignStatus.COMPLETED:
        campaign.status, campaign.finished_at = CampaignStatus.RUNNING, None
    campaign.save(update_fields=["failed_count", "status", "finished_at", "updated_at"])
    audit_record(
        actor=actor, action="update", entity_type="campaign", entity_id=campaign.pk, owner_id=campaign.owner_id,
        user_action=f"Requeued {requeued:,} failed messages of campaign '{campaign.name}'", metadata={"requeued": requeued},
    )
    transaction.on_commit(kick_dispatchers)
    return campaign


def _sample_context(campaign: Campaign, subscriber: Subscriber | None, recipient: str = "") -> dict:
    address = recipient
    if not address and subscriber is not None:
        address = subscriber.email if campaign.channel == Channel.EMAIL else subscriber.phone
    return recipient_context(
        email=(subscriber.email if subscriber else (recipient if campaign.channel == Channel.EMAIL else "")),
        phone=(subscriber.phone if subscriber else (recipient if campaign.channel == Channel.SMS else "")),
        name=subscriber.name if subscriber else "",
        standard_fields=subscriber.standard_fields if subscriber else {},
        custom_fields=subscriber.custom_fields if subscriber else {},
        unsubscribe_url=unsubscribe_url(owner_id=campaign.owner_id, channel=campaign.channel, address=address or ""),
    )


def _compiled(campaign: Campaign):
    template = campaign.template
    if template is not None:
        return compile_parts(subject=campaign.subject or template.subject, body_text=template.body_text, body_html=template.body_html)
    return compile_parts(subject=campaign.subject, body_text=campaign.message_content)


def _audience(campaign: Campaign):
    list_ids = list(campaign.lists.values_list("pk", flat=True))
    qs = Subscriber.objects.filter(list_id__in=list_ids)
    if campaign.import_job_id:
        qs = qs | Subscriber.objects.filter(import_job_id=campaign.import_job_id)
    return qs


def campaign_preview(*, campaign: Campaign, subscriber_id: int | None = None) -> dict:
    """The campaign rendered for one subscriber of its audience (the first one by default)."""
    audience = _audience(campaign)
    subscriber = audience.filter(pk=subscriber_id).first() if subscriber_id else audience.order_by("id").first()
    if subscriber_id and subscriber is None:
        raise NotFound(f"Subscriber {subscriber_id} is not in this campaign's audience", field="subscriber_id")
    subject, text, html = _compiled(campaign).render(_sample_context(campaign, subscriber))
    return {"subscriber_id": subscriber.pk if subscriber else None, "subject": subject, "body_text": text, "body_html": html}


def campaign_test_send(*, actor: Actor, campaign: Campaign, recipient: str) -> dict:
    """Send the campaign once to an address the caller gives, now, through the real channel."""
    try:
        address = normalize_email(recipient) if campaign.channel == Channel.EMAIL else normalize_phone(recipient)
    except RecordError as exc:
        raise InvalidInput(f"recipient: {exc.message}", field="recipient") from None
    if not address:
        raise InvalidInput("recipient: is required", field="recipient")
    sample = _audience(campaign).order_by("id").first()
    context = _sample_context(campaign, sample, address)
    subject, text, html = _compiled(campaign).render(context)
    outgoing = OutgoingMessage(
        uid=str(uuid.uuid4()), channel=campaign.channel, recipient=address, subject=f"[TEST] {subject}" if subject else "",
        body_text=text, body_html=html,
        headers=unsubscribe_headers(context["unsubscribe_url"]) if campaign.channel == Channel.EMAIL else {},
    )
    backend = backend_for(campaign.channel)
    try:
        with backend:
            provider_id = backend.send(outgoing)
    except SendError as exc:
        raise InvalidInput(f"recipient: the test send failed: {exc.message}", field="recipient") from None
    with transaction.atomic():
        audit_record(
            actor=actor, action="update", entity_type="campaign", entity_id=campaign.pk, owner_id=campaign.owner_id,
            user_action=f"Test send of campaign '{campaign.name}' to {address}",
        )
    return {"sent": True, "recipient": address, "provider_message_id": provider_id, "subject": outgoing.subject}


def campaign_dry_run(*, campaign: Campaign, sample_size: int = 1000) -> dict:
    """What a start would do, without doing it: the audience after dedupe and suppression, and
    recipients (of a sample) missing a required merge field."""
    address = "email" if campaign.channel == Channel.EMAIL else "phone"
    audience = _audience(campaign)
    total = audience.count()
    unique = audience.exclude(**{address: ""}).values(address).distinct().count()
    suppressed = audience.filter(**{f"{address}__in": Suppression.objects.filter(
        owner_id=campaign.owner_id, channel=campaign.channel).values("address")}).values(address).distinct().count()
    opted_out = audience.filter(status__in=skipped_statuses(campaign)).values(address).distinct().count()
    required = [name for name, needed in template_required_variables(
        campaign.template, subject=campaign.subject, content=campaign.message_content).items() if needed]
    missing: dict[str, int] = {}
    lacking = 0
    # One query for the sample; a blank phone or name counts as missing, since the message would
    # go out with a gap where it is used.
    sample = audience.order_by("id")[:sample_size].values("standard_fields", "custom_fields", "email", "phone", "name")
    for sub in sample:
        names = recipient_lacks(required, fields=[*sub["standard_fields"], *sub["custom_fields"]],
                                email=sub["email"], phone=sub["phone"], name=sub["name"])
        lacking += bool(names)
        for name in names:
            missing[name] = missing.get(name, 0) + 1
    result = {
        "audience_total": total,
        "unique_addresses": unique,
        "without_address": audience.filter(**{address: ""}).count(),
        "suppressed": suppressed,
        "unsubscribed_bounced_or_inactive": opted_out,
        "would_queue": _would_queue(campaign, unique, suppressed, opted_out),
        "required_merge_fields": required,
        "missing_merge_fields_in_sample": missing,
        "recipients_missing_merge_fields_in_sample": lacking,
        "sample_size": min(sample_size, total),
    }
    if campaign.channel == Channel.SMS:
        result.update(_sms_cost(campaign, audience))
    return result


def _would_queue(campaign: Campaign, unique: int, suppressed: int, opted_out: int) -> int:
    """Exactly what a start would queue on PostgreSQL (the fan-out's own SELECT, counted);
    elsewhere an upper bound."""
    if connection.vendor != "postgresql":
        return max(0, unique - suppressed - opted_out)
    list_ids = list(campaign.lists.values_list("pk", flat=True))
    select, params = _fan_out_select(campaign, list_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FILTER (WHERE status = 'queued') FROM ({select}) AS q", params)
        return cursor.fetchone()[0]


def _sms_cost(campaign: Campaign, audience, sample: int = 200) -> dict:
    """Encoding and segments of the rendered text over a sample of recipients."""
    from campaigns.segments import sms_segments

    compiled = _compiled(campaign)
    counts = []
    for subscriber in audience.order_by("id")[:sample] or [None]:
        _, text, _ = compiled.render(_sample_context(campaign, subscriber))
        counts.append(sms_segments(text))
    return {
        "sms_encoding": "UCS-2" if any(c.encoding == "UCS-2" for c in counts) else "GSM-7",
        "sms_segments_max": max(c.segments for c in counts),
        "sms_segments_average": round(sum(c.segments for c in counts) / len(counts), 2),
    }


@transaction.atomic
def messages_purge(*, actor: Actor, older_than_days: int) -> int:
    """Delete messages of campaigns, and items of batches, that finished before the cutoff; their
    counters stay (a purged failed batch can no longer be retried)."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    finished = Campaign.objects.filter(
        status__in=[CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED], finished_at__lt=cutoff
    ).values("pk")
    deleted, _ = Message.objects.filter(campaign_id__in=finished).delete()
    finished_batches = MessageBatch.objects.filter(
        status__in=[BatchStatus.COMMITTED, BatchStatus.FAILED], finished_at__lt=cutoff).values("pk")
    items, _ = Message.objects.filter(batch_id__in=finished_batches).delete()
    deleted += items
    audit_record(
        actor=actor, action="delete", entity_type="message",
        user_action=f"Purged {deleted:,} messages of campaigns and batches finished more than {older_than_days} days ago",
        metadata={"deleted": deleted, "cutoff": cutoff.isoformat()},
    )
    return deleted


# --- Campaign from a CSV of recipients (seed 001) ------------------------------------------------


def campaign_create_from_csv(*, actor: Actor, owner, stored, name: str, channel: str, template_id: int | None = None,
                             message_content: str = "", subject: str = "", scheduled_at=None) -> Campaign:
    """Seed 001 `POST /campaigns/from-csv`: the CSV's key column (email or phone) gives the
    recipients, every other column becomes each message's variables. A missing key column, or
    a required merge field with no column, is refused, naming them, before anything is stored."""
    from imports.parsing import FileFormatError, detect_format, iter_records, read_header

    key = "email" if channel == Channel.EMAIL else "phone"
    try:
        fmt = detect_format(stored.path, encoding=stored.encoding)
        header = read_header(stored.path, fmt)
    except FileFormatError as exc:
        raise InvalidInput(f"file: {exc}", field="file") from None
    columns = [column.strip().lower() for column in header]
    if key not in columns:
        raise InvalidInput(f"file: no {key} column (found: {', '.join(header)[:300]})", field="file")
    template = MessageTemplate.objects.filter(pk=template_id, owner=owner).first() if template_id else None
    required = template_required_variables(template, subject=subject, content=message_content) if (template or message_content) else {}
    missing = missing_variables(required, set(columns))
    if missing:
        raise InvalidInput(f"file: no column for merge field(s) {', '.join(missing)}", field="file",
                           extra={"missing_fields": missing})
    key_at = columns.index(key)
    normalize = normalize_email if channel == Channel.EMAIL else normalize_phone
    suppressed = set(Suppression.objects.filter(owner=owner, channel=channel).values_list("address", flat=True))
    with transaction.atomic():
        campaign = campaign_create(
            actor=actor, owner=owner, name=name, channel=channel, template_id=template_id,
            message_content=message_content, subject=subject, scheduled_at=scheduled_at, explicit_recipients=True,
        )
        seen: set[str] = set()
        writer = MessageWriter(campaign)
        invalid = 0
        for _, cells, _ in iter_records(stored.path, fmt, start=fmt.header_end, first_record=2):
            cells = list(cells) + [""] * (len(columns) - len(cells))
            try:
                address = normalize(cells[key_at])
            except RecordError:
                invalid += 1
                continue
            if not address or address in seen:
                continue
            seen.add(address)
            variables = {c: v.strip() for c, v in zip(columns, cells) if c != key and v.strip()}
            writer.add(recipient=address, skip_reason="suppressed" if address in suppressed else "", variables=variables)
        total, skipped = writer.flush()
        if not total:
            raise InvalidInput("file: no valid recipient in the file", field="file", extra={"invalid_rows": invalid})
        Campaign.objects.filter(pk=campaign.pk).update(total_count=total, skipped_count=skipped,
                                                       job_data={"source": "csv", "invalid_rows": invalid})
    campaign.refresh_from_db()
    return campaign
