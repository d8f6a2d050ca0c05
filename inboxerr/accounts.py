"""Users, roles and API tokens: the operations behind `make run`'s first login, the
create_api_token command and the token admin."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q
from knox.models import AuthToken

from audit.services import audit_record
from inboxerr.actors import Actor
from inboxerr.errors import InvalidInput, NotFound
from inboxerr.storable import storable, unstorable_reason

OPERATORS_GROUP = "Operators"
# The apps whose models operators work with; they get every permission on them.
OPERATOR_APPS = ("subscribers", "imports", "campaigns", "audit", "webhooks")
# Models every owner shares: only superusers (or users given these permissions) change them.
SHARED_MODELS = ("ratelimit", "dispatchslot", "batchstream", "outboxswitch", "smsinboundreceipt")


@transaction.atomic
def roles_ensure() -> Group:
    """Create (or refresh) the Operators group: every permission on Inboxerr's own models, so a
    staff user added to it can run the product but not administer users."""
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    shared = Q(content_type__app_label="campaigns", content_type__model__in=SHARED_MODELS)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label__in=OPERATOR_APPS)
        .exclude(shared)
        .exclude(content_type__app_label="campaigns", codename="control_outbox")  # stops everyone's batches
    )
    return group


@transaction.atomic
def admin_ensure(*, username: str, password: str | None) -> tuple[object, str | None]:
    """The first superuser. Returns (user, password) where password is set only when this call
    created the user (with the given password or a generated one)."""
    if reason := unstorable_reason(username):
        raise InvalidInput(f"username: contains {reason}, which cannot be stored", field="username")
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user:
        return user, None
    password = password or secrets.token_urlsafe(12)
    user = User.objects.create_superuser(username=username, email="", password=password)
    audit_record(
        actor=Actor.system("command"), action="create", entity_type="user", entity_id=user.pk,
        user_action=f"Created first superuser '{username}'",
    )
    return user, password


@transaction.atomic
def api_token_create(*, actor: Actor, username: str, expiry_days: int | None = None) -> tuple[AuthToken, str]:
    """Issue an API token; the plain token is returned once and only its digest is stored."""
    # A name the database cannot hold (a lone surrogate, a NUL) is nobody's.
    user = None if unstorable_reason(username) else get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"No active user named '{storable(username)}'", field="username")
    expiry = timedelta(days=expiry_days) if expiry_days else settings.API_TOKEN_TTL
    instance, token = AuthToken.objects.create(user=user, expiry=expiry)
    audit_record(
        actor=actor, action="create", entity_type="api_token", entity_id=instance.token_key,
        owner_id=user.pk, user_action=f"Created an API token for '{username}' (expires {instance.expiry:%Y-%m-%d})",
    )
    return instance, token
