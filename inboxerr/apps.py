from django.apps import AppConfig
from django.contrib.auth.apps import AuthConfig


class InboxerrConfig(AppConfig):
    default = True  # the module holds other configs: this is the one "inboxerr" in INSTALLED_APPS means
    name = "inboxerr"
    verbose_name = "System"


class UsersConfig(AuthConfig):
    """django.contrib.auth under the name operators know it by in the console."""

    default = False
    verbose_name = "Users and groups"


class KnoxConfig(AppConfig):
    """django-rest-knox ships no AppConfig; this one names its section and its model."""

    default = False
    name = "knox"
    verbose_name = "API tokens"

    def ready(self) -> None:
        token = self.get_model("AuthToken")
        token._meta.verbose_name, token._meta.verbose_name_plural = "API token", "API tokens"
