from django.urls import path

from imports.api import views

urlpatterns = [
    path("", views.ImportJobListView.as_view(), name="import-list"),
    path("csv", views.ImportCsvView.as_view(), name="import-csv"),
    path("<str:job_id>", views.ImportJobDetailView.as_view(), name="import-detail"),
    path("<str:job_id>/contacts", views.ImportContactsView.as_view(), name="import-contacts"),
    path("<str:job_id>/errors", views.ImportErrorsView.as_view(), name="import-errors"),
    path("<str:job_id>/cancel", views.ImportCancelView.as_view(), name="import-cancel"),
]

# Seed 000's job routes, mounted under /api/v1/subscribers/.
subscriber_job_urlpatterns = [
    path("background-upload", views.BackgroundUploadView.as_view(), name="background-upload"),
    path("jobs/status", views.JobsStatusView.as_view(), name="jobs-status"),
    path("jobs/cleanup-stuck", views.JobsCleanupStuckView.as_view(), name="jobs-cleanup-stuck"),
    path("jobs/clear-all", views.JobsClearAllView.as_view(), name="jobs-clear-all"),
    path("jobs/<str:job_id>/force-retry", views.JobForceRetryView.as_view(), name="job-force-retry"),
    path("upload-queue/status", views.UploadQueueStatusView.as_view(), name="upload-queue-status"),
    path("upload-queue/retry", views.UploadQueueRetryView.as_view(), name="upload-queue-retry"),
    path("recovery/manual-retry", views.UploadQueueRetryView.as_view(), name="recovery-manual-retry"),
]
