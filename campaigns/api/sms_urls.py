"""Routes filled in by the sms_urls work."""

urlpatterns: list = []
