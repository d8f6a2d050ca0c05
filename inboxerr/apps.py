from django.apps import AppConfig


class InboxerrConfig(AppConfig):
    name = "inboxerr"
    verbose_name = "Inboxerr"
