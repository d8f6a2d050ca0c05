"""GET /u/<token>: a confirmation page. POST /u/<token>: unsubscribe at once (RFC 8058 one-click:
mail clients POST `List-Unsubscribe=One-Click` with no cookie and no CSRF token)."""

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns.unsubscribe import read_token
from inboxerr.actors import Actor
from subscribers.services import address_unsubscribe


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        target = read_token(token)
    except signing.BadSignature:
        return render(request, "campaigns/unsubscribe.html", {"invalid": True}, status=404)
    if request.method == "GET":
        return render(request, "campaigns/unsubscribe.html", {"address": target["address"], "token": token})
    address_unsubscribe(actor=Actor(user=None, source="unsubscribe", ip=request.META.get("REMOTE_ADDR")), **target)
    return render(request, "campaigns/unsubscribe.html", {"address": target["address"], "done": True})
