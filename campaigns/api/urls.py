from django.urls import path

from campaigns.api import views

urlpatterns = [
    path("campaigns", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/from-csv", views.CampaignFromCsvView.as_view(), name="campaign-from-csv"),
    path("campaigns/<str:campaign_id>", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<str:campaign_id>/start", views.campaign_start_view, name="campaign-start"),
    path("campaigns/<str:campaign_id>/pause", views.campaign_pause_view, name="campaign-pause"),
    path("campaigns/<str:campaign_id>/resume", views.campaign_resume_view, name="campaign-resume"),
    path("campaigns/<str:campaign_id>/cancel", views.campaign_cancel_view, name="campaign-cancel"),
    path("campaigns/<str:campaign_id>/messages", views.CampaignMessagesView.as_view(), name="campaign-messages"),
    path("campaigns/<str:campaign_id>/retry-failed", views.campaign_retry_failed_view, name="campaign-retry-failed"),
    path("campaigns/<str:campaign_id>/test-send", views.CampaignTestSendView.as_view(), name="campaign-test-send"),
    path("campaigns/<str:campaign_id>/preview", views.CampaignPreviewView.as_view(), name="campaign-preview"),
    path("campaigns/<str:campaign_id>/dry-run", views.CampaignDryRunView.as_view(), name="campaign-dry-run"),
]
