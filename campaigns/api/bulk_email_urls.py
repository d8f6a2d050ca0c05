"""Routes filled in by the bulk_email_urls work."""

urlpatterns: list = []
