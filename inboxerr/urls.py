from django.contrib import admin
from django.urls import include, path
from django.templatetags.static import static
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from campaigns.api.views import TemplateViewSet
from campaigns.unsubscribe_views import unsubscribe
from imports.api.urls import subscriber_job_urlpatterns
from inboxerr.health import health
from inboxerr.metrics import metrics_view
from operations.admin_views import dashboard_index
from subscribers.api.views import SuppressionViewSet

router = DefaultRouter(trailing_slash=True)
router.register("suppressions", SuppressionViewSet, basename="suppression")
router.register("templates", TemplateViewSet, basename="template")

api_v1 = [
    path("subscribers/", include(subscriber_job_urlpatterns)),
    path("subscribers/", include("subscribers.api.urls")),
    path("imports/", include("imports.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("campaigns.api.batch_urls")),
    path("sms/", include("campaigns.api.sms_urls")),
    path("bulk-email/", include("campaigns.api.bulk_email_urls")),
    path("tasks/", include("inboxerr.tasks_api")),
    path("webhooks/", include("inboxerr.webhooks.urls")),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),  # the console is the site
    # Browsers ask for /favicon.ico on every page that names no icon (the error pages, the API).
    path("favicon.ico", RedirectView.as_view(url=static("inboxerr/favicon.svg"), permanent=True)),
    # The admin index is the operations dashboard; every other admin page is the site's own.
    path("admin/", admin.site.admin_view(dashboard_index), name="operations-dashboard"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Split: its start-up script is a file of its own, which the Content-Security-Policy allows.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("api-auth/", include("rest_framework.urls")),
    path("health", health, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("u/<str:token>", unsubscribe, name="unsubscribe"),
]

# JSON in the API's error shape under /api/, the site's pages elsewhere.
handler400 = "inboxerr.error_views.bad_request"
handler403 = "inboxerr.error_views.permission_denied"
handler404 = "inboxerr.error_views.page_not_found"
handler500 = "inboxerr.error_views.server_error"
