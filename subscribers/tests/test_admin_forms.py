"""List and subscriber forms in the console: what a service refuses is shown on the field (never a
500), fields are edited as key/value rows, and a list's page leads to what belongs to it. Every
form is posted with the page's CSRF token, as a browser does."""

import pytest

from audit.models import AuditLog
from campaigns.models import Campaign
from inboxerr.tests.admin_browser import browser_for, field_errors, submit
from subscribers.models import Subscriber, SubscriberList
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

ADD_LIST = "/admin/subscribers/subscriberlist/add/"


@pytest.fixture
def browser(owner):
    return browser_for(owner)


@pytest.fixture
def owned_list(owner):
    return SubscriberListFactory(owner=owner, name="Newsletter")


def _change_list(subscriber_list: SubscriberList) -> str:
    return f"/admin/subscribers/subscriberlist/{subscriber_list.pk}/change/"


def _change_subscriber(subscriber: Subscriber) -> str:
    return f"/admin/subscribers/subscriber/{subscriber.pk}/change/"


def test_a_new_list_name_with_a_slash_is_shown_on_the_name_field(browser, owner):
    response = submit(browser, ADD_LIST, {"name": "Spring/Summer"})
    assert response.status_code == 200
    assert field_errors(response, "name") == ["must not contain '/' (list names are used in URLs)"]
    assert not SubscriberList.objects.filter(owner=owner).exists()
    assert not AuditLog.objects.filter(entity_type="list").exists()


def test_renaming_a_list_with_a_slash_is_refused_on_the_field_and_keeps_the_old_name(browser, owned_list):
    response = submit(browser, _change_list(owned_list), {"name": "a/b"})
    assert response.status_code == 200
    assert field_errors(response, "name") == ["must not contain '/' (list names are used in URLs)"]
    owned_list.refresh_from_db()
    assert owned_list.name == "Newsletter"


def test_a_list_name_already_taken_is_shown_on_the_name_field(browser, owner, owned_list):
    response = submit(browser, ADD_LIST, {"name": "Newsletter"})
    assert field_errors(response, "name") == ["List 'Newsletter' already exists"]
    assert SubscriberList.objects.filter(owner=owner).count() == 1


def test_a_list_is_created_through_the_service_with_its_audit_row(browser, owner):
    response = submit(browser, ADD_LIST, {"name": "Clients é漢字🙂"})
    assert response.status_code == 302
    created = SubscriberList.objects.get(owner=owner)
    assert created.name == "Clients é漢字🙂"
    assert AuditLog.objects.filter(entity_type="list", action="create", entity_id=str(created.pk)).count() == 1


def test_a_nul_byte_in_a_text_field_is_a_field_error_not_a_database_error(browser, owned_list):
    subscriber = SubscriberFactory(list=owned_list, email="ann@example.com", name="Ann")
    response = submit(browser, _change_subscriber(subscriber), {"name": "Ann\x00"})
    assert response.status_code == 200
    assert field_errors(response, "name") == ["Null characters are not allowed."]
    subscriber.refresh_from_db()
    assert subscriber.name == "Ann"


def test_subscriber_fields_are_edited_as_key_value_rows(browser, owned_list):
    subscriber = SubscriberFactory(list=owned_list, email="ann@example.com",
                                   standard_fields={"first_name": "Ann", "company": "Acme"},
                                   custom_fields={"plan": "gold", "seats": 12})
    page = browser.get(_change_subscriber(subscriber)).content.decode()
    assert 'name="custom_fields_key" value="plan"' in page
    assert page.count('name="custom_fields_key" value=""') == 1  # the empty row, usable without JS
    response = submit(browser, _change_subscriber(subscriber), {
        "standard_fields_key": ["first_name", "company", ""],
        "standard_fields_value": ["Anna", "", ""],
        "custom_fields_key": ["plan", "seats", "region"],
        "custom_fields_value": ["platinum", "12", "EU"],
    })
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.standard_fields == {"first_name": "Anna", "company": ""}
    # The untouched number stays a number; the new key is added.
    assert subscriber.custom_fields == {"plan": "platinum", "seats": 12, "region": "EU"}


def test_a_key_value_row_is_removed_by_clearing_its_key_and_value(browser, owned_list):
    subscriber = SubscriberFactory(list=owned_list, custom_fields={"plan": "gold", "old": "x"})
    response = submit(browser, _change_subscriber(subscriber), {
        "custom_fields_key": ["plan", ""], "custom_fields_value": ["gold", ""],
    })
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.custom_fields == {"plan": "gold"}


@pytest.mark.parametrize("keys, values, error", [
    (["", "x"], ["orphan", ""], "The value 'orphan' needs a key."),
    (["k" * 101], ["v"], "Keys are at most 100 characters."),
    (["pl\x00an"], ["gold"], "Null characters are not allowed."),
    (["plan", "plan"], ["a", "b"], "The key 'plan' appears twice."),
])
def test_bad_key_value_rows_are_refused_on_the_field(browser, owned_list, keys, values, error):
    subscriber = SubscriberFactory(list=owned_list, custom_fields={"plan": "gold"})
    response = submit(browser, _change_subscriber(subscriber),
                      {"custom_fields_key": keys, "custom_fields_value": values})
    assert response.status_code == 200
    assert field_errors(response, "custom_fields") == [error]
    subscriber.refresh_from_db()
    assert subscriber.custom_fields == {"plan": "gold"}


def test_a_list_page_links_to_its_subscribers_import_export_and_campaigns(browser, owner, owned_list):
    page = browser.get(_change_list(owned_list)).content.decode()
    assert f'href="/admin/subscribers/subscriber/?list={owned_list.pk}"' in page
    assert f'href="/admin/imports/importjob/upload/?list={owned_list.pk}"' in page
    assert 'href="/api/v1/subscribers/lists/Newsletter/export?owner=owner"' in page
    assert f'href="/admin/campaigns/campaign/?lists__id__exact={owned_list.pk}"' in page


def test_the_list_links_lead_to_that_lists_subscribers_campaigns_and_csv(browser, owner, owned_list):
    SubscriberFactory(list=owned_list, email="in@example.com")
    SubscriberFactory(list=SubscriberListFactory(owner=owner, name="Other"), email="out@example.com")
    sending = Campaign.objects.create(owner=owner, name="To newsletter", subject="Hi", message_content="Hi")
    sending.lists.add(owned_list)
    Campaign.objects.create(owner=owner, name="Elsewhere", subject="Hi", message_content="Hi")

    subscribers = browser.get(f"/admin/subscribers/subscriber/?list={owned_list.pk}").content.decode()
    assert "in@example.com" in subscribers and "out@example.com" not in subscribers
    campaigns = browser.get(f"/admin/campaigns/campaign/?lists__id__exact={owned_list.pk}").content.decode()
    assert "To newsletter" in campaigns and "Elsewhere" not in campaigns
    export = browser.get("/api/v1/subscribers/lists/Newsletter/export?owner=owner")
    assert export.status_code == 200
    assert b"in@example.com" in b"".join(export.streaming_content)


def test_an_outsider_gets_no_page_and_no_links_for_someone_elses_list(outsider, owned_list):
    response = browser_for(outsider).get(_change_list(owned_list), follow=True)
    assert b"/admin/subscribers/subscriber/?list=" not in response.content
    assert b"doesn\xe2\x80\x99t exist" in response.content
