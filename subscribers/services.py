"""Writes on lists, subscribers and suppressions. Each public function is one operation: the API,
the admin, tasks and commands all call these, and each records its audit row in the same
transaction as the change."""

import time
from pathlib import Path
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from audit.services import audit_record
from imports.models import ACTIVE_IMPORT_STATUSES, ImportJob, ImportStatus
from inboxerr.actors import Actor
from inboxerr.errors import Conflict, InvalidInput
from inboxerr.storable import unstorable_reason
from subscribers.models import (
    SUPPRESSING_STATUSES,
    Channel,
    KeyField,
    Subscriber,
    SubscriberList,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
)
from subscribers.normalize import FieldWarning, RecordError, clean_record, normalize_email, normalize_phone

BULK_MAX_RECORDS = 10_000


def subscriber_snapshot(subscriber: Subscriber) -> dict:
    return {
        "list": subscriber.list.name,
        "email": subscriber.email,
        "phone": subscriber.phone,
        "name": subscriber.name,
        "status": subscriber.status,
        "standard_fields": subscriber.standard_fields,
        "custom_fields": subscriber.custom_fields,
    }


def list_snapshot(subscriber_list: SubscriberList) -> dict:
    return {
        "name": subscriber_list.name,
        "description": subscriber_list.description,
        "key_field": subscriber_list.key_field,
        "subscriber_count": subscriber_list.subscriber_count,
    }


# --- Lists ---------------------------------------------------------------------------------------


def _validate_list_fields(name: str, key_field: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name: is required", field="name")
    if len(name) > 200:
        raise InvalidInput("name: is longer than 200 characters", field="name")
    if "/" in name:
        raise InvalidInput("name: must not contain '/' (list names are used in URLs)", field="name")
    if reason := unstorable_reason(name):
        # The API and the admin refuse it before; a command-line argument arrives unchecked.
        raise InvalidInput(f"name: contains {reason}, which cannot be stored", field="name")
    if key_field not in KeyField.values:
        raise InvalidInput(f"key_field: must be one of {', '.join(KeyField.values)}", field="key_field")
    return name


@transaction.atomic
def list_create(*, actor: Actor, owner, name: str, description: str = "", key_field: str = KeyField.EMAIL) -> SubscriberList:
    name = _validate_list_fields(name, key_field)
    if SubscriberList.objects.filter(owner=owner, name=name).exists():
        raise Conflict(f"List '{name}' already exists", field="name")
    try:
        with transaction.atomic():
            subscriber_list = SubscriberList.objects.create(
                owner=owner, name=name, description=description or "", key_field=key_field
            )
    except IntegrityError:
        raise Conflict(f"List '{name}' already exists", field="name") from None
    audit_record(
        actor=actor,
        action="create",
        entity_type="list",
        entity_id=subscriber_list.pk,
        owner_id=owner.pk,
        user_action=f"Created list '{name}'",
        after=list_snapshot(subscriber_list),
    )
    return subscriber_list


@transaction.atomic
def list_get_or_create(*, actor: Actor, owner, name: str, key_field: str | None = None) -> SubscriberList:
    """The owner's list called `name`, created on first use (seed 000 creates lists by name)."""
    name = _validate_list_fields(name, key_field or KeyField.EMAIL)
    existing = SubscriberList.objects.filter(owner=owner, name=name).first()
    if existing:
        if key_field and existing.key_field != key_field:
            raise InvalidInput(
                f"List '{name}' is keyed on {existing.key_field}, not {key_field}", field="key_field"
            )
        return existing
    try:
        return list_create(actor=actor, owner=owner, name=name, key_field=key_field or KeyField.EMAIL)
    except Conflict:  # created by a concurrent request since we looked
        return SubscriberList.objects.get(owner=owner, name=name)


@transaction.atomic
def list_update(*, actor: Actor, subscriber_list: SubscriberList, name: str, description: str) -> SubscriberList:
    """Rename or describe a list. The key field never changes: every key was built from it."""
    name = _validate_list_fields(name, subscriber_list.key_field)
    locked = SubscriberList.objects.select_for_update().get(pk=subscriber_list.pk)
    if name != locked.name and SubscriberList.objects.filter(owner_id=locked.owner_id, name=name).exists():
        raise Conflict(f"List '{name}' already exists", field="name")
    before = list_snapshot(locked)
    locked.name, locked.description = name, description or ""
    locked.save(update_fields=["name", "description"])
    audit_record(
        actor=actor,
        action="update",
        entity_type="list",
        entity_id=locked.pk,
        owner_id=locked.owner_id,
        user_action=f"Updated list '{name}'",
        before=before,
        after=list_snapshot(locked),
    )
    return locked


def list_delete(*, actor: Actor, subscriber_list: SubscriberList, force: bool = False, reason: str = "") -> dict:
    """Seed 000's safe list deletion: refuses while imports are active or when the list is large,
    unless forced; cancels the list's jobs, removes their waiting files, deletes the subscribers
    set-based, clears the job records and records the whole thing as one audit row."""
    started = time.perf_counter()
    threshold = settings.LIST_DELETE_CONFIRM_THRESHOLD
    with transaction.atomic():
        # Lock first, then check: an import queued meanwhile cannot slip past the checks.
        locked = SubscriberList.objects.select_for_update().get(pk=subscriber_list.pk)
        active_count = ImportJob.objects.filter(list=locked, status__in=ACTIVE_IMPORT_STATUSES).count()
        if active_count and not force:
            raise Conflict(
                f"List '{locked.name}' has {active_count} active import job(s); "
                "pass force=true to cancel them and delete the list",
                field="force",
                extra={"active_jobs": active_count},
            )
        if locked.subscriber_count > threshold and not force:
            raise Conflict(
                f"List '{locked.name}' has {locked.subscriber_count:,} subscribers "
                f"(more than {threshold:,}); pass force=true to confirm the deletion",
                field="force",
                extra={"subscriber_count": locked.subscriber_count, "requires_confirmation": True},
            )
        jobs = ImportJob.objects.filter(list=locked)
        waiting_files = [path for path in jobs.exclude(file_path="").values_list("file_path", flat=True)]
        jobs_cancelled = jobs.filter(status__in=ACTIVE_IMPORT_STATUSES).update(
            status=ImportStatus.CANCELLED,
            finished_at=timezone.now(),
            error_message="Cancelled: the list was deleted",
        )
        subscribers_deleted = _delete_list_subscribers(locked.pk)
        job_ids = list(jobs.values_list("pk", flat=True))
        job_records_cleaned = jobs.delete()[1].get(ImportJob._meta.label, 0)
        before = list_snapshot(locked)
        list_id, list_name, owner_id = locked.pk, locked.name, locked.owner_id
        locked.delete()
        audit_record(
            actor=actor,
            action="delete",
            entity_type="list",
            entity_id=list_id,
            owner_id=owner_id,
            user_action=f"Deleted list '{list_name}' with {subscribers_deleted:,} subscribers",
            before=before,
            metadata={
                "reason": reason,
                "force": force,
                "subscribers_deleted": subscribers_deleted,
                "jobs_cancelled": jobs_cancelled,
            },
        )
        transaction.on_commit(lambda: _remove_files(waiting_files))
        transaction.on_commit(lambda: _drop_seen_tables(job_ids))

    elapsed = time.perf_counter() - started
    return {
        "success": True,
        "message": f"List '{list_name}' deleted successfully",
        "deletion_summary": {
            "list_name": list_name,
            "subscribers_deleted": subscribers_deleted,
            "deletion_time_seconds": round(elapsed, 2),
            "reason": reason,
        },
        "cleanup_actions": {
            "jobs_cancelled": jobs_cancelled,
            "chunk_files_cleaned": len(waiting_files),
            "job_records_cleaned": job_records_cleaned,
            "audit_logged": True,
        },
        "performance": {
            "records_per_second": round(subscribers_deleted / elapsed) if elapsed > 0 else subscribers_deleted,
            "was_large_operation": subscribers_deleted > threshold,
        },
    }


def _delete_list_subscribers(list_id: int) -> int:
    # One set-based DELETE: the ORM's delete() would first load every row to run collectors.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Subscriber._meta.db_table} WHERE list_id = %s", [list_id])
        return cursor.rowcount


def _remove_files(paths: Iterable[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _drop_seen_tables(job_ids: list) -> None:
    from imports.writers import seen_table  # imports build on subscribers, not the reverse

    with connection.cursor() as cursor:
        for job_id in job_ids:
            cursor.execute(f"DROP TABLE IF EXISTS {seen_table(job_id)}")


@transaction.atomic
def list_recount(*, subscriber_list: SubscriberList) -> int:
    """Recompute a list's subscriber counter from the table (repair tool; normally exact)."""
    count = Subscriber.objects.filter(list=subscriber_list).count()
    SubscriberList.objects.filter(pk=subscriber_list.pk).update(subscriber_count=count)
    return count


def _bump_count(list_id: int, delta: int) -> None:
    if delta:
        SubscriberList.objects.filter(pk=list_id).update(subscriber_count=F("subscriber_count") + delta)


# --- Subscribers ---------------------------------------------------------------------------------


def _clean(record: dict, key_field: str):
    try:
        return clean_record(record, key_field)
    except RecordError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None


@transaction.atomic
def subscriber_create(*, actor: Actor, owner, list_name: str, record: dict) -> Subscriber:
    subscriber_list = list_get_or_create(actor=actor, owner=owner, name=list_name)
    clean = _clean(record, subscriber_list.key_field)
    existing = Subscriber.objects.filter(list=subscriber_list, key=clean.key).first()
    if existing:
        raise Conflict(
            f"Subscriber '{clean.key}' already exists in list '{subscriber_list.name}'",
            field=subscriber_list.key_field,
            extra={"id": existing.pk},
        )
    try:
        with transaction.atomic():
            subscriber = Subscriber.objects.create(list=subscriber_list, **clean.as_fields())
    except IntegrityError:
        raise Conflict(
            f"Subscriber '{clean.key}' already exists in list '{subscriber_list.name}'",
            field=subscriber_list.key_field,
        ) from None
    _bump_count(subscriber_list.pk, 1)
    _suppress_if_needed(subscriber, reason_status=subscriber.status)
    audit_record(
        actor=actor,
        action="create",
        entity_type="subscriber",
        entity_id=subscriber.pk,
        owner_id=subscriber_list.owner_id,
        user_action=f"Added {clean.key} to list '{subscriber_list.name}'",
        after=subscriber_snapshot(subscriber),
        metadata={"list_name": subscriber_list.name, **_warnings_metadata(clean.warnings)},
    )
    # The fields left out, for the caller to tell (not stored: the subscriber is what was kept).
    subscriber.warnings = clean.warnings
    return subscriber


@transaction.atomic
def subscriber_update(*, actor: Actor, subscriber: Subscriber, data: dict) -> Subscriber:
    """Update fields of a subscriber; `data` holds only the fields to change. A `list` name moves
    the subscriber to another of the owner's lists (created on first use)."""
    subscriber = Subscriber.objects.select_for_update().select_related("list").get(pk=subscriber.pk)
    before = subscriber_snapshot(subscriber)
    source_list = subscriber.list
    target_list = source_list
    list_name = data.get("list")
    if list_name and list_name != source_list.name:
        target_list = list_get_or_create(actor=actor, owner=source_list.owner, name=list_name)

    merged = {
        "email": subscriber.email,
        "phone": subscriber.phone,
        "name": subscriber.name,
        "status": subscriber.status,
        "standard_fields": subscriber.standard_fields,
        "custom_fields": subscriber.custom_fields,
    }
    merged.update({k: v for k, v in data.items() if k in merged})
    if "name" not in data and "standard_fields" in data:
        merged["name"] = subscriber.name
    clean = _clean(merged, target_list.key_field)
    clash = Subscriber.objects.filter(list=target_list, key=clean.key).exclude(pk=subscriber.pk).first()
    if clash:
        raise Conflict(
            f"Subscriber '{clean.key}' already exists in list '{target_list.name}'",
            field=target_list.key_field,
            extra={"id": clash.pk},
        )
    old_status = subscriber.status
    for name, value in clean.as_fields().items():
        setattr(subscriber, name, value)
    subscriber.list = target_list
    subscriber.save()
    if target_list.pk != source_list.pk:
        _bump_count(source_list.pk, -1)
        _bump_count(target_list.pk, 1)
    if subscriber.status != old_status:
        _suppress_if_needed(subscriber, reason_status=subscriber.status)
    audit_record(
        actor=actor,
        action="update",
        entity_type="subscriber",
        entity_id=subscriber.pk,
        owner_id=target_list.owner_id,
        user_action=f"Updated subscriber {subscriber.key}",
        before=before,
        after=subscriber_snapshot(subscriber),
        metadata=_warnings_metadata(clean.warnings),
    )
    subscriber.warnings = clean.warnings
    return subscriber


def _warnings_metadata(warnings: list[FieldWarning]) -> dict:
    return {"left_out": [f"{w.field}: {w.reason}" for w in warnings]} if warnings else {}


@transaction.atomic
def subscriber_delete(*, actor: Actor, subscriber: Subscriber) -> None:
    subscriber = Subscriber.objects.select_for_update().select_related("list").get(pk=subscriber.pk)
    before = subscriber_snapshot(subscriber)
    pk, list_id, owner_id = subscriber.pk, subscriber.list_id, subscriber.list.owner_id
    subscriber.delete()
    _bump_count(list_id, -1)
    audit_record(
        actor=actor,
        action="delete",
        entity_type="subscriber",
        entity_id=pk,
        owner_id=owner_id,
        user_action=f"Deleted subscriber {before['email'] or before['phone']} from list '{before['list']}'",
        before=before,
    )


@transaction.atomic
def subscribers_delete(*, actor: Actor, subscribers: QuerySet[Subscriber]) -> int:
    """Delete many subscribers (admin bulk delete): set-based, counters adjusted, one audit row."""
    ids = list(subscribers.values_list("pk", flat=True))
    per_list = dict(
        Subscriber.objects.filter(pk__in=ids).values_list("list_id").annotate(n=Count("pk")).values_list("list_id", "n")
    )
    owners = set(SubscriberList.objects.filter(pk__in=per_list).values_list("owner_id", flat=True))
    deleted = Subscriber.objects.filter(pk__in=ids).delete()[0]
    for list_id, count in per_list.items():
        _bump_count(list_id, -count)
    audit_record(
        actor=actor,
        action="delete",
        entity_type="subscriber",
        owner_id=owners.pop() if len(owners) == 1 else None,
        user_action=f"Deleted {deleted} subscriber(s)",
        metadata={"subscriber_ids": ids[:1000], "count": deleted},
    )
    return deleted


@transaction.atomic
def subscriber_set_status(*, actor: Actor, subscriber: Subscriber, status: str) -> Subscriber:
    if status not in SubscriberStatus.values:
        raise InvalidInput(
            f"status: '{status}' is not a valid status (one of: {', '.join(SubscriberStatus.values)})",
            field="status",
        )
    subscriber = Subscriber.objects.select_for_update().select_related("list").get(pk=subscriber.pk)
    old = subscriber.status
    if old != status:
        subscriber.status = status
        subscriber.save(update_fields=["status", "updated_at"])
        _suppress_if_needed(subscriber, reason_status=status)
    audit_record(
        actor=actor,
        action="update",
        entity_type="subscriber",
        entity_id=subscriber.pk,
        owner_id=subscriber.list.owner_id,
        user_action=f"Changed status of {subscriber.key} from {old} to {status}",
        before={"status": old},
        after={"status": status},
    )
    return subscriber


@transaction.atomic
def subscribers_set_status(*, actor: Actor, subscribers: QuerySet[Subscriber], status: str) -> int:
    """Change the status of many subscribers at once (admin action): one UPDATE, one INSERT of
    suppressions, one summarising audit row."""
    if status not in SubscriberStatus.values:
        raise InvalidInput(f"status: '{status}' is not a valid status", field="status")
    ids = list(subscribers.values_list("pk", flat=True))
    changed = Subscriber.objects.filter(pk__in=ids).exclude(status=status).update(
        status=status, updated_at=timezone.now()
    )
    if status in SUPPRESSING_STATUSES:
        suppress_subscribers(Subscriber.objects.filter(pk__in=ids), reason=status)
    owners = set(SubscriberList.objects.filter(subscribers__pk__in=ids).values_list("owner_id", flat=True))
    audit_record(
        actor=actor,
        action="update",
        entity_type="subscriber",
        owner_id=owners.pop() if len(owners) == 1 else None,
        user_action=f"Set status of {changed} subscriber(s) to {status}",
        after={"status": status},
        metadata={"subscriber_ids": ids[:1000], "count": len(ids), "changed": changed},
    )
    return changed


def subscribers_bulk_upsert(*, actor: Actor, owner, list_name: str, records: list) -> dict:
    """Seed 000 `POST /bulk`: validate every record, then upsert the valid ones in one
    statement. Invalid records are reported by their position and never half-written."""
    if not isinstance(records, list):
        raise InvalidInput("subscribers: must be a list of records", field="subscribers")
    if len(records) > BULK_MAX_RECORDS:
        raise InvalidInput(
            f"subscribers: at most {BULK_MAX_RECORDS:,} records per call; "
            "use /api/v1/subscribers/background-upload or a CSV import for more",
            field="subscribers",
        )
    with transaction.atomic():
        subscriber_list = list_get_or_create(actor=actor, owner=owner, name=list_name)
        # One bulk write per list at a time keeps created/updated counts and the counter exact.
        SubscriberList.objects.select_for_update().filter(pk=subscriber_list.pk).first()
        by_key: dict[str, Subscriber] = {}
        errors: list[str] = []
        warnings: list[dict] = []
        duplicates = 0
        for index, record in enumerate(records):
            try:
                clean = clean_record(record, subscriber_list.key_field)
            except RecordError as exc:
                errors.append(f"record {index}: {exc}")
                continue
            warnings += [
                {"record": index, "field": w.field, "value": w.value[:200], "reason": w.reason} for w in clean.warnings
            ]
            if clean.key in by_key:  # seed 000: a repeat inside one upload is skipped
                duplicates += 1
                continue
            by_key[clean.key] = Subscriber(list=subscriber_list, **clean.as_fields())
        existing = set(
            Subscriber.objects.filter(list=subscriber_list, key__in=list(by_key)).values_list("key", flat=True)
        )
        Subscriber.objects.bulk_create(
            list(by_key.values()),
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["list", "key"],
            update_fields=["email", "phone", "name", "status", "standard_fields", "custom_fields", "updated_at"],
        )
        created = len(by_key) - len(existing)
        _bump_count(subscriber_list.pk, created)
        suppressing = [key for key, sub in by_key.items() if sub.status in SUPPRESSING_STATUSES]
        if suppressing:
            suppress_subscribers(Subscriber.objects.filter(list=subscriber_list, key__in=suppressing))
        processed = len(records) - len(errors)
        audit_record(
            actor=actor,
            action="import",
            entity_type="list",
            entity_id=subscriber_list.pk,
            owner_id=subscriber_list.owner_id,
            user_action=f"Bulk upload to '{subscriber_list.name}': {created} created, {len(existing)} updated, "
            f"{len(errors)} failed",
            metadata={
                "created": created,
                "updated": len(existing),
                "duplicates": duplicates,
                "failed": len(errors),
                "warnings": len(warnings),
            },
        )
    return {
        "message": "Bulk upload completed",
        "processed": processed,
        "failed": len(errors),
        "errors": errors[:1000],
        # Records kept without a secondary field they held (a bad phone on an email-keyed list).
        "warning_count": len(warnings),
        "warnings": warnings[:1000],
        "created": created,
        "updated": len(existing),
        "duplicates": duplicates,
    }


# --- Suppression ---------------------------------------------------------------------------------


def _suppress_if_needed(subscriber: Subscriber, *, reason_status: str) -> None:
    if reason_status in SUPPRESSING_STATUSES:
        suppress_subscribers(Subscriber.objects.filter(pk=subscriber.pk), reason=reason_status)


def suppress_subscribers(subscribers: QuerySet[Subscriber], reason: str | None = None) -> int:
    """Put the addresses of these subscribers on their owners' suppression lists (set-based;
    an address already there keeps its first reason). Called inside the caller's transaction."""
    rows = subscribers.values_list("list__owner_id", "email", "phone", "status")
    suppressions = []
    for owner_id, email, phone, status in rows.iterator(chunk_size=5000):
        why = reason or status
        if email:
            suppressions.append(Suppression(owner_id=owner_id, channel=Channel.EMAIL, address=email, reason=why))
        if phone:
            suppressions.append(Suppression(owner_id=owner_id, channel=Channel.SMS, address=phone, reason=why))
    Suppression.objects.bulk_create(suppressions, batch_size=5000, ignore_conflicts=True)
    return len(suppressions)


def _normalize_address(channel: str, address: str) -> str:
    try:
        if channel == Channel.EMAIL:
            value = normalize_email(address)
        elif channel == Channel.SMS:
            value = normalize_phone(address)
        else:
            raise InvalidInput(f"channel: must be one of {', '.join(Channel.values)}", field="channel")
    except RecordError as exc:
        raise InvalidInput(f"address: {exc.message}", field="address") from None
    if not value:
        raise InvalidInput("address: is required", field="address")
    return value


@transaction.atomic
def suppression_create(*, actor: Actor, owner, channel: str, address: str, reason: str = SuppressionReason.MANUAL) -> Suppression:
    if reason not in SuppressionReason.values:
        raise InvalidInput(f"reason: must be one of {', '.join(SuppressionReason.values)}", field="reason")
    address = _normalize_address(channel, address)
    existing = Suppression.objects.filter(owner=owner, channel=channel, address=address).first()
    if existing:
        raise Conflict(f"{address} is already suppressed for {channel}", field="address", extra={"id": existing.pk})
    suppression = Suppression.objects.create(owner=owner, channel=channel, address=address, reason=reason)
    audit_record(
        actor=actor,
        action="create",
        entity_type="suppression",
        entity_id=suppression.pk,
        owner_id=owner.pk,
        user_action=f"Suppressed {address} for {channel} ({reason})",
        after={"channel": channel, "address": address, "reason": reason},
    )
    return suppression


@transaction.atomic
def address_unsubscribe(*, actor: Actor, owner_id: int, channel: str, address: str, reason: str = SuppressionReason.UNSUBSCRIBED) -> int:
    """A recipient opted out (unsubscribe link, STOP reply): suppress the address for its owner
    and mark every subscriber of that owner with it as unsubscribed. Idempotent; returns how many
    subscribers changed."""
    field = "email" if channel == Channel.EMAIL else "phone"
    Suppression.objects.get_or_create(owner_id=owner_id, channel=channel, address=address, defaults={"reason": reason})
    changed = (
        Subscriber.objects.filter(list__owner_id=owner_id, **{field: address})
        .exclude(status=SubscriberStatus.UNSUBSCRIBED)
        .update(status=SubscriberStatus.UNSUBSCRIBED, updated_at=timezone.now())
    )
    audit_record(
        actor=actor, action="update", entity_type="suppression", owner_id=owner_id,
        user_action=f"{address} unsubscribed from {channel} ({changed} subscriber(s) updated)",
        after={"channel": channel, "address": address, "reason": reason},
    )
    return changed


@transaction.atomic
def suppression_delete(*, actor: Actor, suppression: Suppression) -> None:
    before = {"channel": suppression.channel, "address": suppression.address, "reason": suppression.reason}
    pk, owner_id = suppression.pk, suppression.owner_id
    suppression.delete()
    audit_record(
        actor=actor,
        action="delete",
        entity_type="suppression",
        entity_id=pk,
        owner_id=owner_id,
        user_action=f"Removed suppression of {before['address']} for {before['channel']}",
        before=before,
    )


# --- Export --------------------------------------------------------------------------------------


def list_export(*, actor: Actor, subscriber_list: SubscriberList) -> Iterator[list]:
    """Rows of a list's CSV export (header first), streamed from a server-side cursor so memory
    stays flat at any size. Cells are made safe against spreadsheet formula injection."""
    from subscribers.exports import export_rows  # local: keeps the CSV code in its own module

    with transaction.atomic():
        audit_record(
            actor=actor,
            action="export",
            entity_type="list",
            entity_id=subscriber_list.pk,
            owner_id=subscriber_list.owner_id,
            user_action=f"Exported list '{subscriber_list.name}' ({subscriber_list.subscriber_count:,} subscribers)",
        )
    return export_rows(subscriber_list)
