"""Seed 004's bulk email jobs: a reminder to explicit addresses, subscribers or whole lists,
sent by the campaign dispatcher.

A job is a Campaign(kind=bulk_email). Its messages are all written when the job is created
(chunked bulk inserts), so it starts `running` at once and the dispatcher picks it up like any
campaign; `job_data` keeps the seed's fields (job_type, personal_message, term, deadline), which
are also each message's `variables`, the only per-message data the dispatcher's renderer reads.
The job's public view (the seed's job fields) is computed from the campaign's counters.
"""

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from audit.services import audit_record
from campaigns import services
from campaigns.models import Campaign, CampaignKind, CampaignStatus, Message, MessageStatus, MessageTemplate
from campaigns.rendering import compile_parts, missing_variables, template_variables
from inboxerr.actors import Actor
from inboxerr.errors import Conflict, InvalidInput, NotFound
from subscribers.models import SUPPRESSING_STATUSES, Channel, Subscriber, SubscriberList, SubscriberStatus, Suppression
from subscribers.normalize import RecordError, normalize_email
from subscribers.selectors import analyze_fields

JOB_TYPE_REMINDER = "reminder"
# Merge fields every reminder message carries in its `variables`.
JOB_VARIABLES = ("personal_message", "term", "deadline")

BUILTIN_TEMPLATE_NAME = "Reminder (built-in)"
BUILTIN_TEMPLATE_DIR = Path(settings.BASE_DIR) / "templates" / "campaigns"
REMINDER_SUBJECT = "Reminder: submissions{% if term %} for {{ term }}{% endif %} due{% if deadline %} by {{ deadline }}{% endif %}"

RECENT_JOBS_DEFAULT = 50
RECENT_JOBS_MAX = 100
# A job's status lists at most this many failed recipients (the rest are in its messages).
FAILED_RECIPIENTS_SHOWN = 1000
_CHUNK = 1000


class JobStatus(models.TextChoices):
    """The seed's job statuses; a job's campaign status maps onto them (job_status)."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# --- Starting a job ------------------------------------------------------------------------------


@transaction.atomic
def bulk_reminder_start(
    *,
    actor: Actor,
    owner,
    emails: Iterable[str] = (),
    subscriber_ids: Iterable[int] = (),
    list_names: Iterable[str] = (),
    personal_message: str = "",
    term: str = "",
    deadline: str = "",
    template_id: int | None = None,
) -> Campaign:
    """Create a reminder job and queue one message per recipient, deduplicated by address
    (a subscriber wins over an explicit address); suppressed, unsubscribed, bounced, inactive
    and address-less recipients are written as `skipped` with the reason. Every input error is
    found before anything is stored; a job with nothing left to send is refused."""
    emails, subscriber_ids, list_names = list(emails or ()), sorted(set(subscriber_ids or ())), list(list_names or ())
    if not (emails or subscriber_ids or list_names):
        raise InvalidInput("recipients: give at least one of emails, subscriber_ids or list_names", field="recipients")
    addresses = _normalized_emails(emails)
    lists = _owner_lists(owner, list_names)
    audience_list_ids = {lst.pk for lst in lists} | _subscriber_list_ids(owner, subscriber_ids)
    template = _template_for(actor=actor, owner=owner, template_id=template_id)
    _check_merge_fields(template, owner, audience_list_ids, only_subscribers=not addresses)

    job_data = {"job_type": JOB_TYPE_REMINDER, "personal_message": personal_message or "", "term": term or "",
                "deadline": deadline or ""}
    now = timezone.now()
    job = Campaign.objects.create(
        owner=owner, kind=CampaignKind.BULK_EMAIL, name=_job_name(term), channel=Channel.EMAIL, template=template,
        status=CampaignStatus.RUNNING, started_at=now, job_data=job_data,
    )
    job.lists.set(lists)
    variables = {name: job_data[name] for name in JOB_VARIABLES}
    rows = _recipients(owner, subscriber_ids=subscriber_ids, list_ids=[lst.pk for lst in lists], addresses=addresses)
    written = _write_messages(job, rows, variables)
    total = sum(written.values())
    reasons = {reason: n for reason, n in written.items() if reason}
    if not written[""]:
        # Raising rolls back the job and its messages: a job that would send nothing is not kept.
        raise InvalidInput(
            f"Nothing to send: all {total} recipients are skipped ({_describe(reasons)})",
            field="recipients", extra={"skipped": reasons},
        )
    job.total_count, job.skipped_count = total, sum(reasons.values())
    Campaign.objects.filter(pk=job.pk).update(total_count=job.total_count, skipped_count=job.skipped_count)
    audit_record(
        actor=actor, action="create", entity_type="bulk_email_job", entity_id=job.pk, owner_id=owner.pk,
        user_action=f"Started reminder job '{job.name}': {total - job.skipped_count:,} recipients"
        + (f" ({_describe(reasons)} skipped)" if reasons else ""),
        after={"job_type": JOB_TYPE_REMINDER, "recipients": total - job.skipped_count, "skipped": reasons,
               "template_id": template.pk, "lists": [lst.name for lst in lists]},
    )
    transaction.on_commit(services.kick_dispatchers)
    return job


def bulk_job_cancel(*, actor: Actor, job: Campaign) -> Campaign:
    """Cancel a job: its queued messages are not sent (the campaign cancel, one operation)."""
    return services.campaign_cancel(actor=actor, campaign=job)


def _job_name(term: str) -> str:
    return f"Reminder: {term}"[:200] if term else "Reminder"


def _describe(reasons: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))


def _normalized_emails(emails: list[str]) -> list[str]:
    """Normalised, in order, duplicates removed; every invalid address is named at once."""
    addresses, invalid = {}, []
    for raw in emails:
        try:
            address = normalize_email(raw)
        except RecordError as exc:
            invalid.append(exc.message)
            continue
        if not address:
            invalid.append("an empty address")
            continue
        addresses.setdefault(address, None)
    if invalid:
        shown = "; ".join(invalid[:20]) + (f"; and {len(invalid) - 20} more" if len(invalid) > 20 else "")
        raise InvalidInput(f"emails: {shown}", field="emails", extra={"invalid_count": len(invalid)})
    return list(addresses)


def _owner_lists(owner, list_names: list[str]) -> list[SubscriberList]:
    names = list(dict.fromkeys(name.strip() for name in list_names))
    found = {lst.name: lst for lst in SubscriberList.objects.filter(owner=owner, name__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise InvalidInput(f"list_names: not found: {', '.join(missing)}", field="list_names")
    return [found[name] for name in names]


def _subscriber_list_ids(owner, subscriber_ids: list[int]) -> set[int]:
    """The lists of the given subscribers; ids that are not the owner's subscribers are named."""
    found: dict[int, int] = {}
    for start in range(0, len(subscriber_ids), _CHUNK):
        chunk = subscriber_ids[start:start + _CHUNK]
        found.update(Subscriber.objects.filter(list__owner=owner, pk__in=chunk).values_list("pk", "list_id"))
    missing = [str(pk) for pk in subscriber_ids if pk not in found]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise InvalidInput(f"subscriber_ids: not found: {shown}", field="subscriber_ids")
    return set(found.values())


def _template_for(*, actor: Actor, owner, template_id: int | None) -> MessageTemplate:
    if template_id is None:
        return reminder_template_ensure(actor=actor, owner=owner)
    template = MessageTemplate.objects.filter(pk=template_id, owner=owner).first()
    if template is None:
        raise InvalidInput(f"template_id: template {template_id} not found", field="template_id")
    if not template.is_active:
        raise InvalidInput(f"template_id: template '{template.name}' is not active", field="template_id")
    if template.channel != Channel.EMAIL:
        raise InvalidInput(f"template_id: template '{template.name}' is for {template.channel}, not email", field="template_id")
    if not template.subject:
        raise InvalidInput(f"template_id: template '{template.name}' has no subject", field="template_id")
    return template


def _check_merge_fields(template: MessageTemplate, owner, list_ids: set[int], *, only_subscribers: bool) -> None:
    """A merge field the recipients cannot fill is refused, as for campaigns. Explicit addresses
    have no fields, so subscriber fields count only when every recipient is a subscriber."""
    compiled = compile_parts(subject=template.subject, body_text=template.body_text, body_html=template.body_html)
    available = set(JOB_VARIABLES)
    if only_subscribers and list_ids:
        names = list(SubscriberList.objects.filter(pk__in=list_ids).values_list("name", flat=True))
        fields = analyze_fields(user=owner, list_names=names)
        available |= set(fields["standard"]) | set(fields["custom"])
    missing = missing_variables(template_variables(compiled), available)
    if missing:
        raise InvalidInput(
            f"template_id: merge fields the recipients do not have: {', '.join(missing)} "
            "(give them a default: {{ field|default:\"...\" }})",
            field="template_id", extra={"missing_fields": missing},
        )


def reminder_template_source() -> dict[str, str]:
    return {
        "subject": REMINDER_SUBJECT,
        "body_text": (BUILTIN_TEMPLATE_DIR / "reminder.txt").read_text(encoding="utf-8"),
        "body_html": (BUILTIN_TEMPLATE_DIR / "reminder.html").read_text(encoding="utf-8"),
    }


def reminder_template_ensure(*, actor: Actor, owner) -> MessageTemplate:
    """The owner's copy of the built-in reminder template (the dispatcher renders templates
    from rows). The files are its source: a copy that differs is brought back in line."""
    source = reminder_template_source()
    template = MessageTemplate.objects.filter(owner=owner, name=BUILTIN_TEMPLATE_NAME).first()
    if template is None:
        try:
            return services.template_create(actor=actor, owner=owner, name=BUILTIN_TEMPLATE_NAME,
                                            channel=Channel.EMAIL, **source)
        except (Conflict, IntegrityError):
            # Created meanwhile by a concurrent request (template_create ran in a savepoint).
            template = MessageTemplate.objects.get(owner=owner, name=BUILTIN_TEMPLATE_NAME)
    wanted = {**source, "channel": Channel.EMAIL, "is_active": True}
    if any(getattr(template, key) != value for key, value in wanted.items()):
        template = services.template_update(actor=actor, template=template, data=wanted)
    return template


def _recipients(owner, *, subscriber_ids: list[int], list_ids: list[int],
                addresses: list[str]) -> Iterator[tuple[int | None, str, str]]:
    """(subscriber id, address, subscriber status): subscribers first, then explicit addresses."""
    if subscriber_ids or list_ids:
        qs = Subscriber.objects.filter(list__owner=owner).filter(Q(pk__in=subscriber_ids) | Q(list_id__in=list_ids))
        yield from qs.order_by("id").values_list("id", "email", "status").iterator(chunk_size=5000)
    for address in addresses:
        yield None, address, SubscriberStatus.ACTIVE


def _write_messages(job: Campaign, rows: Iterator[tuple[int | None, str, str]], variables: dict) -> Counter:
    """Deduplicate by address and insert the messages in chunks (one suppression lookup and one
    bulk insert per chunk). Returns the number written per skip reason ("" for queued)."""
    seen: set[str] = set()
    written: Counter = Counter()
    chunk: list[tuple[int | None, str, str]] = []
    for subscriber_id, address, status in rows:
        if address:
            if address in seen:
                continue
            seen.add(address)
        chunk.append((subscriber_id, address, status))
        if len(chunk) >= _CHUNK:
            written.update(_insert_chunk(job, chunk, variables))
            chunk = []
    if chunk:
        written.update(_insert_chunk(job, chunk, variables))
    return written


def _insert_chunk(job: Campaign, chunk: list[tuple[int | None, str, str]], variables: dict) -> Counter:
    suppressed = set(
        Suppression.objects.filter(owner_id=job.owner_id, channel=Channel.EMAIL,
                                   address__in=[address for _, address, _ in chunk if address])
        .values_list("address", flat=True)
    )
    messages, reasons = [], Counter()
    for subscriber_id, address, status in chunk:
        reason = _skip_reason(address, status, suppressed)
        reasons[reason] += 1
        messages.append(Message(
            campaign=job, subscriber_id=subscriber_id, channel=Channel.EMAIL, recipient=address, variables=variables,
            status=MessageStatus.SKIPPED if reason else MessageStatus.QUEUED, skip_reason=reason,
        ))
    Message.objects.bulk_create(messages)
    return reasons


def _skip_reason(address: str, status: str, suppressed: set[str]) -> str:
    if not address:
        return "no_address"
    if address in suppressed:
        return "suppressed"
    if status in SUPPRESSING_STATUSES or status == SubscriberStatus.INACTIVE:
        return status
    return ""


# --- Reading jobs --------------------------------------------------------------------------------


def bulk_jobs_for_user(user) -> QuerySet[Campaign]:
    qs = Campaign.objects.filter(kind=CampaignKind.BULK_EMAIL)
    return qs if user.is_superuser else qs.filter(owner=user)


def bulk_job_get(*, user, job_id: object) -> Campaign:
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound(f"Job '{job_id}' not found") from None
    job = bulk_jobs_for_user(user).filter(pk=pk).first()
    if job is None:
        raise NotFound(f"Job '{job_id}' not found")
    return job


def job_status(job: Campaign) -> str:
    """The campaign status in the seed's words. A paused job is still running (it has work
    left; error_message says why it paused); a finished job where nothing got through failed."""
    if job.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.STARTING):
        return JobStatus.PENDING
    if job.status in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
        return JobStatus.RUNNING
    if job.status == CampaignStatus.COMPLETED:
        return JobStatus.FAILED if _all_failed(job) else JobStatus.COMPLETED
    return JobStatus.CANCELLED if job.status == CampaignStatus.CANCELLED else JobStatus.FAILED


def _all_failed(job: Campaign) -> bool:
    return job.sent_count == 0 and job.failed_count + job.unknown_count > 0


def job_figures(job: Campaign) -> dict[str, int]:
    """Counts from the campaign's counters. A message whose outcome is unknown (the server may
    have taken it) counts as failed: it is not retried, and its error says so."""
    recipients = max(0, job.total_count - job.skipped_count)
    sent, failed = job.sent_count, job.failed_count + job.unknown_count
    pending = 0 if job.status in (CampaignStatus.CANCELLED, CampaignStatus.FAILED) else max(0, recipients - sent - failed)
    if recipients:
        progress = (sent + failed) * 100 // recipients
    else:
        progress = 100 if job.status == CampaignStatus.COMPLETED else 0
    return {"recipient_count": recipients, "emails_sent": sent, "emails_failed": failed, "emails_pending": pending,
            "progress_percentage": min(100, progress)}


def job_error_message(job: Campaign, status: str) -> str | None:
    if job.status_reason:
        return job.status_reason
    if status == JobStatus.FAILED and _all_failed(job):
        return f"All {job.failed_count + job.unknown_count:,} emails failed"
    return None


def job_entry(job: Campaign, failed_recipients: list[dict]) -> dict:
    """One job with exactly the seed's fields."""
    status = job_status(job)
    finished = status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
    return {
        "id": str(job.pk),
        "job_type": job.job_data.get("job_type", JOB_TYPE_REMINDER),
        "status": status,
        **job_figures(job),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.finished_at if finished else None,
        "personal_message": job.job_data.get("personal_message") or None,
        "failed_recipients": failed_recipients,
        "error_message": job_error_message(job, status),
    }


def failed_recipients(job_ids: list) -> dict:
    """{job id: [{email, error}]} for failed and unknown-outcome messages, oldest first, at most
    FAILED_RECIPIENTS_SHOWN per job, in one query."""
    rows = (
        Message.objects.filter(campaign_id__in=job_ids, status__in=[MessageStatus.FAILED, MessageStatus.UNKNOWN])
        .annotate(rank=Window(RowNumber(), partition_by=[F("campaign_id")], order_by=F("id").asc()))
        .filter(rank__lte=FAILED_RECIPIENTS_SHOWN)
        .order_by("campaign_id", "id")
        .values_list("campaign_id", "recipient", "status", "last_error")
    )
    found: dict = {pk: [] for pk in job_ids}
    for campaign_id, recipient, status, error in rows:
        if status == MessageStatus.UNKNOWN and "unknown" not in error:
            error = f"outcome unknown: {error}"
        found[campaign_id].append({"email": recipient, "error": error})
    return found


def bulk_job_status(*, user, job_id: object) -> dict:
    job = bulk_job_get(user=user, job_id=job_id)
    return job_entry(job, failed_recipients([job.pk])[job.pk])


def bulk_recent_jobs(*, user, limit: int = RECENT_JOBS_DEFAULT) -> tuple[list[dict], int]:
    """The newest jobs (at most RECENT_JOBS_MAX, whatever is asked) and how many there are."""
    qs = bulk_jobs_for_user(user)
    jobs = list(qs.order_by("-created_at")[:max(1, min(limit, RECENT_JOBS_MAX))])
    failed = failed_recipients([job.pk for job in jobs]) if jobs else {}
    return [job_entry(job, failed[job.pk]) for job in jobs], qs.count()
