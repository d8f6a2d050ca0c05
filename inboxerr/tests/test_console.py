"""The operations console around the pages: section names, the front door, error pages, the
stylesheet, API tokens shown once, rate limits present from the start, owners on add forms."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.views.defaults import server_error
from knox.models import AuthToken

from campaigns.models import RateLimit
from inboxerr.tests.admin_browser import browser_for, page_messages, read_form, submit
from inboxerr.webhooks.models import WebhookEndpoint


def test_the_console_index_names_its_sections_for_people(superuser):
    page = browser_for(superuser).get("/admin/").content.decode()
    for section in ("Subscribers", "Imports", "Campaigns &amp; sending", "Audit log", "Webhooks", "API tokens",
                    "Background tasks", "System", "Users and groups"):
        assert f">{section}<" in page, section
    for raw in ("Knox", "Outbox switchs", "Auth tokens", "Authentication and Authorization"):
        assert raw not in page
    assert ">Batch publisher<" in page


def test_the_site_root_opens_the_console():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


@pytest.mark.django_db
def test_an_unknown_address_shows_the_branded_not_found_page():
    response = Client().get("/no-such-page")
    assert response.status_code == 404
    assert b"Inboxerr operations" in response.content and b"Page not found" in response.content


def test_the_server_error_page_needs_no_database_or_request_context():
    # No database access is allowed in this test: a query would raise.
    response = server_error(RequestFactory().get("/"))
    standalone = render_to_string("500.html")
    assert response.status_code == 500
    assert b"Inboxerr operations" in response.content and "Something went wrong" in standalone


def test_every_admin_page_loads_the_console_stylesheet(owner):
    page = browser_for(owner).get("/admin/subscribers/subscriber/").content.decode()
    assert "/static/inboxerr/admin.css" in page
    stylesheet = open(finders.find("inboxerr/admin.css")).read()
    assert "overflow-x: auto" in stylesheet and "overflow-wrap: break-word" in stylesheet


def test_a_new_api_token_is_shown_once_in_a_single_message_without_its_digest(superuser):
    browser = browser_for(superuser)
    # The form starts with the current user picked.
    response = submit(browser, "/admin/knox/authtoken/add/", {"expiry_days": 7}, follow=True)
    shown = page_messages(response)
    assert len(shown) == 1
    token = re.search(r"Token for root: (\S+) ", shown[0]).group(1)
    digest = AuthToken.objects.get(user=superuser).digest
    assert len(token) == 64 and digest not in shown[0]
    assert token not in browser.get("/admin/knox/authtoken/").content.decode()


def test_a_user_cannot_issue_a_token_for_someone_else(owner, outsider):
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["add_authtoken", "view_authtoken"]))
    browser = browser_for(owner)
    form = read_form(browser.get("/admin/knox/authtoken/add/").content.decode())
    assert form.fields["user"].options == [str(owner.pk)]
    response = submit(browser, "/admin/knox/authtoken/add/", {"user": outsider.pk})
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not AuthToken.objects.exists()


@pytest.mark.django_db
def test_email_and_sms_rate_limits_exist_from_the_start_without_limiting_anything():
    rows = {row.name: row for row in RateLimit.objects.all()}
    assert set(rows) == {"email", "sms"}
    assert not rows["email"].enabled and not rows["sms"].enabled  # disabled: no limit, as before
    assert rows["email"].rate > 0 and rows["sms"].rate > 0


def test_the_rate_limits_page_lists_both_channels(superuser):
    page = browser_for(superuser).get("/admin/campaigns/ratelimit/").content.decode()
    assert ">email<" in page and ">sms<" in page


def test_an_add_form_starts_with_the_current_user_as_owner(superuser, owner):
    form = read_form(browser_for(superuser).get("/admin/webhooks/webhookendpoint/add/").content.decode())
    assert form.data["owner"] == [str(superuser.pk)]
    assert str(owner.pk) in form.fields["owner"].options  # a superuser may pick another owner


def test_an_operators_add_form_offers_only_themselves_as_owner(owner, outsider, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    browser = browser_for(owner)
    url = "/admin/webhooks/webhookendpoint/add/"
    assert read_form(browser.get(url).content.decode()).fields["owner"].options == [str(owner.pk)]
    response = submit(browser, url, {"owner": outsider.pk, "url": "https://hooks.example.com/in"})
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not WebhookEndpoint.objects.exists()
