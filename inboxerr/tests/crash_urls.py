"""The site's URLs plus two views that fail as no view should, for the tests of what a client gets
then (inboxerr/tests/test_error_contract.py)."""

from django.urls import path
from rest_framework.request import Request
from rest_framework.views import APIView

from inboxerr.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401


class CrashView(APIView):
    required_perms = None

    def get(self, request: Request):
        raise RuntimeError("a bug no handler knows")


def crash_page(request):
    raise RuntimeError("a bug no handler knows")


urlpatterns = [
    path("api/v1/crash", CrashView.as_view()),
    path("crash", crash_page),
    *urlpatterns,
]
