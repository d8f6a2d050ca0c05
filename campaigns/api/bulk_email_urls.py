"""Seed 004's bulk email routes, mounted at /api/v1/bulk-email/."""

from django.urls import path

from campaigns.api import bulk_email as views

urlpatterns = [
    path("send-reminders", views.SendRemindersView.as_view(), name="bulk-email-send-reminders"),
    # The seed's own path for the same operation.
    path("send-instructor-reminders", views.SendRemindersView.as_view(), name="bulk-email-send-instructor-reminders"),
    path("job-status/<str:job_id>", views.JobStatusView.as_view(), name="bulk-email-job-status"),
    path("recent-jobs", views.RecentJobsView.as_view(), name="bulk-email-recent-jobs"),
    path("jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="bulk-email-job-cancel"),
]
