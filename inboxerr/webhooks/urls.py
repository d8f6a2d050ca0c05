from django.urls import path, re_path

from inboxerr.webhooks.api import views

urlpatterns = [
    path("", views.EndpointListView.as_view(), name="webhook-list"),
    re_path(r"^create/?$", views.SeedCreateView.as_view(), name="webhook-seed-create"),
    re_path(r"^getall/?$", views.SeedGetAllView.as_view(), name="webhook-seed-getall"),
    path("update_by_id/<int:endpoint_id>/<str:status>", views.SeedUpdateStatusView.as_view(),
         name="webhook-seed-update"),
    path("del_by_url/<path:url>", views.SeedDeleteByUrlView.as_view(), name="webhook-seed-delete"),
    path("deliveries/<int:delivery_id>/replay", views.DeliveryReplayView.as_view(), name="webhook-delivery-replay"),
    path("<int:endpoint_id>/", views.EndpointDetailView.as_view(), name="webhook-detail"),
    path("<int:endpoint_id>/rotate-secret", views.RotateSecretView.as_view(), name="webhook-rotate-secret"),
    path("<int:endpoint_id>/deliveries", views.DeliveryListView.as_view(), name="webhook-deliveries"),
]
