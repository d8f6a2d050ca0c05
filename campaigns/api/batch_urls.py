"""Seed 003's routes, mounted at /api/v1/."""

from django.urls import path

from campaigns.api import batches as views

urlpatterns = [
    path("batch/process", views.BatchProcessView.as_view(), name="batch-process"),
    path("outbox/status", views.OutboxStatusView.as_view(), name="outbox-status"),
    path("outbox/start", views.OutboxStartView.as_view(), name="outbox-start"),
    path("outbox/stop", views.OutboxStopView.as_view(), name="outbox-stop"),
    path("outbox/pending-batches", views.PendingBatchesView.as_view(), name="outbox-pending-batches"),
    path("outbox/batch/<str:batch_id>/status", views.BatchStatusView.as_view(), name="outbox-batch-status"),
    path("outbox/batch/<str:batch_id>/items", views.BatchItemsView.as_view(), name="outbox-batch-items"),
    path("outbox/batch/<str:batch_id>/retry", views.BatchRetryView.as_view(), name="outbox-batch-retry"),
]
