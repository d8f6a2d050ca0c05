"""django-q2 entry points for campaigns: take ids, call services."""

from campaigns import dispatch as dispatcher
from campaigns import outbox, services, sms_inbound


def fan_out(campaign_id: str) -> str:
    return services.campaign_fan_out(campaign_id=campaign_id).status


def dispatch(slot: int | None = None) -> int:
    try:
        return dispatcher.dispatch()
    finally:
        if slot is not None:
            services.dispatch_slot_release(slot)
            # Work that arrived while this run was ending found the slot taken: pick it up now.
            if dispatcher.has_due_work():
                services.kick_dispatchers(1)


def publish() -> int:
    """A run of the batch publisher; one whose time ran out with batches left queues the next."""
    sent, more = outbox.publish()
    if more:
        outbox.outbox_kick()
    return sent


def tick() -> dict:
    """Every minute: requeue expired leases, requeue fan-outs whose worker died, start due
    scheduled campaigns, keep dispatchers going, forget inbound SMS receipts past their window."""
    swept = dispatcher.requeue_expired_leases()
    fan_outs = services.campaigns_fan_out_recover()
    started = services.campaigns_start_scheduled()
    if dispatcher.has_due_work():
        services.kick_dispatchers()
    dispatcher.finish_campaigns()
    if outbox.outbox_has_work():
        outbox.outbox_kick()
    receipts = sms_inbound.sms_inbound_receipts_purge()
    return {"swept": swept, "fan_outs": fan_outs, "started": started, "sms_receipts_purged": receipts}
