"""The console in a real browser: log in through the form (CSRF and all) and land on the index."""

import pytest

from inboxerr.tests.browser import assert_not_clipped, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_log_in_through_the_form_and_see_the_console(admin_page, live_stack):
    admin_page.goto(live_stack.url("/admin/"))
    assert "Inboxerr" in admin_page.title()
    assert admin_page.get_by_role("link", name="Subscriber lists").first.is_visible()
    assert_not_clipped(admin_page)
    screenshot(admin_page, "index")


def test_a_wrong_password_is_refused_with_a_message(browser, live_stack, staff_user):
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_stack.url("/admin/login/"))
    page.get_by_label("Username").fill(staff_user.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    assert page.locator(".errornote").is_visible()
    assert "/admin/login/" in page.url
    context.close()
