"""Admin login lockout (django-axes): wrong passwords for one username from one address lock that
pair out, the right password included, through the real login form with CSRF enforced."""

import re

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from inboxerr.tests.factories import UserFactory

LOGIN = "/admin/login/"
PASSWORD = "the-right-password-42"


@pytest.fixture
def staff(db):
    user = UserFactory(username="operator1", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def _browser(**defaults) -> Client:
    return Client(enforce_csrf_checks=True, **defaults)


def _log_in(client: Client, username: str, password: str):
    """GET the form, then POST it with the token it carries, as a browser does."""
    form = client.get(LOGIN).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    return client.post(LOGIN, {"csrfmiddlewaretoken": token, "username": username, "password": password,
                               "next": "/admin/"})


def _logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


@override_settings(AXES_FAILURE_LIMIT=3)
def test_wrong_passwords_lock_the_user_out_from_that_address_then_a_reset_lifts_it(staff):
    browser = _browser()
    # Without the form's CSRF token nothing is even tried.
    assert browser.post(LOGIN, {"username": staff.username, "password": "wrong"}).status_code == 403
    for _ in range(2):
        refused = _log_in(browser, staff.username, "wrong")
        assert refused.status_code == 200 and b"errornote" in refused.content
    locked = _log_in(browser, staff.username, "wrong")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins for <strong>operator1</strong>" in page
    assert "Inboxerr operations" in page and "admin/css/login.css" in page  # the console's frame
    assert int(locked["Retry-After"]) == 15 * 60
    # The right password no longer opens the door from there.
    assert _log_in(browser, staff.username, PASSWORD).status_code == 429
    assert not _logged_in(browser)
    # The lock is for the username and address together: elsewhere the user still gets in.
    elsewhere = _browser(REMOTE_ADDR="198.51.100.20")
    assert _log_in(elsewhere, staff.username, PASSWORD).status_code == 302 and _logged_in(elsewhere)
    call_command("axes_reset", verbosity=0)
    assert _log_in(browser, staff.username, PASSWORD).status_code == 302
    assert _logged_in(browser)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_success_clears_the_count_of_failures(staff):
    browser = _browser()
    for _ in range(2):
        assert _log_in(browser, staff.username, "wrong").status_code == 200
    assert _log_in(browser, staff.username, PASSWORD).status_code == 302
    browser.post("/admin/logout/", {"csrfmiddlewaretoken": browser.cookies["csrftoken"].value})
    for _ in range(2):
        assert _log_in(browser, staff.username, "wrong").status_code == 200
    assert _log_in(browser, staff.username, PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=2)
def test_the_browsable_api_login_is_locked_out_too(staff):
    browser = _browser()
    form_url = "/api-auth/login/"

    def attempt(password: str):
        form = browser.get(form_url).content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        return browser.post(form_url, {"csrfmiddlewaretoken": token, "username": staff.username, "password": password})

    assert attempt("wrong").status_code == 200
    assert attempt("wrong").status_code == 429
    assert attempt(PASSWORD).status_code == 429
