from django.urls import path

from audit.api.views import AuditLogsView
from subscribers.api import views

urlpatterns = [
    path("", views.SubscriberCreateView.as_view(), name="subscriber-create"),
    path("lists", views.ListsView.as_view(), name="lists"),
    path("lists/<str:list_name>", views.ListDetailView.as_view(), name="list-detail"),
    path("lists/<str:list_name>/export", views.ListExportView.as_view(), name="list-export"),
    path("list/<str:list_name>", views.ListPageView.as_view(), name="list-page"),
    path("search", views.SearchView.as_view(), name="search"),
    path("bulk", views.BulkView.as_view(), name="bulk"),
    path("analyze-fields", views.AnalyzeFieldsView.as_view(), name="analyze-fields"),
    path("audit/logs", AuditLogsView.as_view(), name="audit-logs"),
    path("<int:subscriber_id>", views.SubscriberDetailView.as_view(), name="subscriber-detail"),
    path("<int:subscriber_id>/status", views.SubscriberStatusView.as_view(), name="subscriber-status"),
]
