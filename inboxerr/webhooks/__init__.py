"""Outgoing webhooks: endpoints an owner registers, and signed deliveries of events to them."""
