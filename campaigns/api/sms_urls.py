"""Routes under /api/v1/sms/."""

from django.urls import path

from campaigns.api.sms_inbound import SmsInboundView

urlpatterns = [
    path("inbound", SmsInboundView.as_view(), name="sms-inbound"),
]
