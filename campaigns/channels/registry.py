"""Which backend sends each channel, chosen by settings like Django's EMAIL_BACKEND."""

from django.conf import settings
from django.utils.module_loading import import_string

from campaigns.channels.base import ChannelBackend


def backend_for(channel: str) -> ChannelBackend:
    path = settings.EMAIL_CHANNEL_BACKEND if channel == "email" else settings.SMS_BACKEND
    return import_string(path)()


def is_idempotent(channel: str) -> bool:
    path = settings.EMAIL_CHANNEL_BACKEND if channel == "email" else settings.SMS_BACKEND
    return bool(getattr(import_string(path), "idempotent", False))
