"""ASGI entry point: Django for HTTP, the live-progress consumer for WebSockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxerr.settings")
django_application = get_asgi_application()  # set up Django before importing consumers

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from inboxerr.progress import JobProgressConsumer  # noqa: E402
from inboxerr.ws_auth import websocket_auth  # noqa: E402

websocket_urlpatterns = [
    path("ws/jobs/<str:job_id>/", JobProgressConsumer.as_asgi()),
    # The task monitor's address for the same stream, at the root and under the API prefix.
    re_path(r"^(?:api/v1/)?webhooks/task-monitor/(?P<job_id>[^/]+)/?$", JobProgressConsumer.as_asgi()),
]

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": websocket_auth(URLRouter(websocket_urlpatterns)),
})
