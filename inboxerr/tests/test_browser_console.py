"""The console in a real browser: log in through the form (CSRF and all) and land on the index."""


from inboxerr.tests.browser import BROWSER_TEST, assert_not_clipped, screenshot

pytestmark = BROWSER_TEST


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


def _console_with_data(owner) -> dict:
    """A little of everything, made through the services, so every page has rows to show."""
    from campaigns import services as campaigns
    from inboxerr.actors import Actor
    from subscribers import services as subscribers

    actor = Actor(user=owner, source="admin")
    subscriber = subscribers.subscriber_create(actor=actor, owner=owner, list_name="Customers 2026", record={
        "email": "renee.lee@example.com", "name": "Renée Lee", "phone": "+44 20 7946 0018",
        "standard_fields": {"city": "Lyon", "company": "Lee & Daughters, a company with a long name"},
        "custom_fields": {"plan": "gold", "favourite colour": "a very long value " * 6},
    })
    template = campaigns.template_create(actor=actor, owner=owner, name="Welcome", channel="email",
                                         subject="Hi {{ name }}", body_text="Hello {{ name }}", body_html="",
                                         is_active=True)
    return {"subscriber": subscriber, "list": subscriber.list, "template": template}


def test_every_console_page_fits_the_window_at_1366_px(admin_page, live_stack, staff_user):
    from django.contrib import admin

    made = _console_with_data(staff_user)
    page = admin_page
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
        opts = model._meta
        page.goto(live_stack.url(f"/admin/{opts.app_label}/{opts.model_name}/"))
        assert page.locator("#changelist, #content-main").first.is_visible(), opts.label
        assert_not_clipped(page)
    shots = {
        "subscriber-lists": "/admin/subscribers/subscriberlist/",
        "subscriber-list": f"/admin/subscribers/subscriberlist/{made['list'].pk}/change/",
        "subscribers": "/admin/subscribers/subscriber/",
        "subscriber": f"/admin/subscribers/subscriber/{made['subscriber'].pk}/change/",
        "template": f"/admin/campaigns/messagetemplate/{made['template'].pk}/change/",
        "webhook-endpoint-add": "/admin/webhooks/webhookendpoint/add/",
        "audit-log": "/admin/audit/auditlog/",
    }
    for name, path in shots.items():
        page.goto(live_stack.url(path))
        assert_not_clipped(page)
        screenshot(page, name)


def test_a_subscriber_is_edited_from_the_keyboard_with_key_value_fields(admin_page, live_stack, staff_user):
    made = _console_with_data(staff_user)
    page = admin_page
    page.goto(live_stack.url(f"/admin/subscribers/subscriber/{made['subscriber'].pk}/change/"))
    name = page.get_by_label("Name:", exact=True)
    name.focus()
    name.fill("Renée Lee-Martin")
    page.keyboard.press("Enter")  # submits the form, as a person at the keyboard does
    page.wait_for_url(lambda url: url.rstrip("/").endswith("/admin/subscribers/subscriber"))
    made["subscriber"].refresh_from_db()
    assert made["subscriber"].name == "Renée Lee-Martin"
    assert made["subscriber"].custom_fields["plan"] == "gold"  # untouched key/value rows kept


def test_a_webhook_endpoint_is_made_in_the_browser_and_its_secret_shown_once(admin_page, live_stack, staff_user):
    from inboxerr.webhooks.models import WebhookEndpoint

    page = admin_page
    page.goto(live_stack.url("/admin/webhooks/webhookendpoint/add/"))
    page.get_by_label("Url:").fill("http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Save", exact=True).click()
    assert "non-public address" in page.locator(".errorlist").first.inner_text()  # the form says why
    assert not WebhookEndpoint.objects.exists()

    page.get_by_label("Url:").fill("https://93.184.216.34/inboxerr-events")  # a literal public address
    page.get_by_role("button", name="Save", exact=True).click()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.owner == staff_user
    shown = page.locator(".messagelist").inner_text()
    assert endpoint.secret in shown and "not shown again" in shown
    page.reload()
    assert endpoint.secret not in page.content()
    assert_not_clipped(page)


def test_a_rate_limit_is_changed_in_the_browser_and_a_second_row_for_a_channel_is_refused(admin_page, live_stack):
    from campaigns.models import RateLimit
    from campaigns.tests.buckets import rate_limit_row

    page = admin_page
    email = rate_limit_row(name="email", rate=10, burst=50, enabled=False)  # as the migrations make it
    page.goto(live_stack.url(f"/admin/campaigns/ratelimit/{email.pk}/change/"))
    page.get_by_label("Rate:").fill("5")
    page.get_by_label("Enabled").check()
    page.get_by_role("button", name="Save", exact=True).click()
    email.refresh_from_db()
    assert (email.rate, email.enabled) == (5.0, True)
    assert "Enabled: 5" in page.locator("#result_list").inner_text()

    page.goto(live_stack.url("/admin/campaigns/ratelimit/add/"))
    page.get_by_label("Channel:").select_option("email")
    page.get_by_label("Rate:").fill("1")
    page.get_by_role("button", name="Save", exact=True).click()
    assert "already has a rate limit" in page.locator(".errorlist").first.inner_text()
    assert RateLimit.objects.filter(name="email").count() == 1


def test_the_api_docs_render_under_the_content_security_policy(admin_page, live_stack):
    # Swagger UI from drf-spectacular-sidecar, its start-up script a file: the policy ('self' only)
    # lets all of it run (page_as fails the test on any violation Chromium reports).
    admin_page.goto(live_stack.url("/docs"))
    admin_page.locator(".opblock").first.wait_for()
    assert admin_page.locator(".opblock").count() > 50
    assert admin_page.get_by_text("Inboxerr API").first.is_visible()


def test_the_browsable_api_works_under_the_content_security_policy(admin_page, live_stack):
    # DRF's page: its scripts are files (jQuery, Bootstrap, prettify), so they run under 'self';
    # prettify colours the response. Its Log out link (an inline onclick in DRF) still logs out.
    page = admin_page
    page.goto(live_stack.url("/api/v1/subscribers/lists"))
    page.locator(".response-info pre.prettyprint span").first.wait_for()
    page.locator(".navbar .dropdown-toggle").click()
    page.get_by_role("link", name="Log out").click()
    page.wait_for_url(lambda url: "/api/v1/subscribers/lists" in url)
    page.get_by_role("link", name="Log in").wait_for()
