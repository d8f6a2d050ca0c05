"""Admin for API tokens: the add form issues a token and shows it once (only its digest is
stored), replacing knox's admin, which cannot issue one. Also the console's page of failed login
attempts and lockouts (django-axes)."""

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from inboxerr.accounts import api_token_create
from inboxerr.admin_tools import SafeFormAdmin, admin_actor
from inboxerr.errors import InvalidInput
from inboxerr.models import WorkerHeartbeat

admin.site.site_header = "Inboxerr operations"
admin.site.site_title = "Inboxerr"
admin.site.index_title = "Operations console"

if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)

# django-axes: its access attempts (failed logins, lockouts; deleting one lifts its lockout) stay
# in the console. Successful logins and failure logs are not recorded here (AXES_DISABLE_ACCESS_LOG),
# so their pages would always be empty.
for _axes_model in (AccessLog, AccessFailureLog, AccessAttempt):
    if admin.site.is_registered(_axes_model):
        admin.site.unregister(_axes_model)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    @admin.action(description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request: HttpRequest, queryset) -> None:
        # django-axes measures expiry from the time it stamps on a login request; a console request
        # carries none, and its own action fails with a 500 without it.
        request.axes_attempt_time = timezone.now()
        super().cleanup_expired_attempts(request, queryset)


class TokenCreateForm(forms.ModelForm):
    expiry_days = forms.IntegerField(min_value=1, max_value=3650, initial=settings.API_TOKEN_TTL.days)

    class Meta:
        model = AuthToken
        fields = ("user",)


@admin.register(AuthToken)
class AuthTokenAdmin(SafeFormAdmin):
    list_display = ("token_key", "user", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("user__username", "=token_key")
    form = TokenCreateForm

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {**super().get_changeform_initial_data(request), "user": request.user.pk}

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "user":
            users = get_user_model().objects.filter(is_active=True)
            if not request.user.is_superuser:  # only superusers issue tokens for others
                users, kwargs["empty_label"] = users.filter(pk=request.user.pk), None
            kwargs["queryset"] = users
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return False

    def service_save(self, request: HttpRequest, obj: AuthToken, form: forms.ModelForm, change: bool) -> AuthToken:
        user = form.cleaned_data["user"]
        if not request.user.is_superuser and user.pk != request.user.pk:
            raise InvalidInput("Only superusers issue tokens for other users", field="user")
        instance, token = api_token_create(
            actor=admin_actor(request), username=user.get_username(), expiry_days=form.cleaned_data["expiry_days"]
        )
        self.message_user(
            request,
            f"Token for {user.get_username()}: {token} — copy it now, it is not shown again.",
            level=messages.WARNING,
        )
        return instance

    def response_add(self, request: HttpRequest, obj: AuthToken, post_url_continue: str | None = None) -> HttpResponse:
        # Django's "was added successfully" message names the object, and a token's str() is its
        # digest: the one message to show is the token itself, sent by service_save.
        return HttpResponseRedirect(reverse("admin:knox_authtoken_changelist"))


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "beat_at", "hostname", "pid")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WorkerHeartbeat | None = None) -> bool:
        return False
