"""One error shape for everything under /api/: `{"detail": "...", "field": ..., "errors": ...}` as
JSON, whatever failed (an address no route has, a method, a media type, credentials, a bug),
while the console and the other pages keep their HTML error pages."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from subscribers.models import SubscriberList

LISTS = "/api/v1/subscribers/lists"


def assert_error(response, status: int, *, detail: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    if detail is not None:
        assert detail in body["detail"], body["detail"]
    if field is not None:
        assert body["field"] == field
    return body


def test_an_address_no_api_route_has_answers_json_404(api):
    body = assert_error(api.get("/api/v1/no-such-thing"), 404, field="path")
    assert body["detail"] == "No API operation at /api/v1/no-such-thing (the operations are listed in /api/schema/)"


def test_an_unknown_api_address_is_json_for_anonymous_callers_too(anon_api):
    assert_error(anon_api.post("/api/v2/subscribers", {"a": 1}, format="json"), 404, field="path")


def test_pages_outside_the_api_keep_the_html_404_page(db):
    response = Client().get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Page not found" in response.content


def test_a_console_page_that_does_not_exist_keeps_the_html_404_page(client, superuser):
    client.force_login(superuser)
    response = client.get("/admin/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Page not found" in response.content


@pytest.mark.urls("inboxerr.tests.crash_urls")
def test_a_bug_in_an_api_view_answers_json_500_and_a_page_html_500(owner):
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(owner)
    body = assert_error(api.get("/api/v1/crash"), 500)
    assert body == {"detail": "Server error: it has been logged; try again in a moment"}
    assert "RuntimeError" not in body["detail"]

    page = Client(raise_request_exception=False).get("/crash")
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")
    assert b"Something went wrong" in page.content


def test_a_method_the_route_does_not_have_is_json_405(api):
    body = assert_error(api.delete(LISTS), 405)
    assert body["detail"] == 'Method "DELETE" not allowed.'


def test_an_accept_header_the_api_cannot_answer_is_json_406(api):
    response = api.get(LISTS, HTTP_ACCEPT="application/xml")
    assert_error(response, 406, detail="Could not satisfy the request Accept header")


def test_a_form_body_on_a_json_route_is_json_415_and_changes_nothing(api):
    response = api.post(LISTS, "name=News", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, detail='Unsupported media type "application/x-www-form-urlencoded"')
    assert not SubscriberList.objects.exists()


def test_multipart_is_refused_where_only_json_is_read(api):
    response = api.post(LISTS, {"name": "News"}, format="multipart")
    assert_error(response, 415, detail="multipart/form-data")
    assert not SubscriberList.objects.exists()


def test_no_credentials_is_json_401_and_no_permission_json_403(anon_api, no_perms_api):
    assert_error(anon_api.get(LISTS), 401, detail="Authentication credentials were not provided.")
    assert_error(no_perms_api.get(LISTS), 403, detail="You do not have permission to perform this action.")


def test_a_host_the_site_does_not_serve_is_json_400_under_the_api(api):
    response = api.get(LISTS, HTTP_HOST="evil.example")
    assert_error(response, 400, detail="Bad request")


def test_a_validation_error_names_its_one_field(api):
    body = assert_error(api.post(LISTS, {"name": ""}, format="json"), 400, field="name")
    assert body["detail"] == "name: This field may not be blank."
    assert body["errors"] == {"name": ["This field may not be blank."]}


def test_several_bad_fields_are_all_listed_without_a_single_field(api):
    body = assert_error(api.get("/api/v1/subscribers/search", {"limit": 0, "page": 0}), 400)
    assert "field" not in body
    assert set(body["errors"]) == {"limit", "page"}


def test_a_value_of_another_json_type_than_declared_is_refused_naming_it(api):
    body = assert_error(api.post("/api/v1/templates/", {"name": "Hi", "body_text": "x", "body_html": 0},
                                 format="json"), 400, field="body_html")
    assert body["detail"] == "body_html: must be a string, not a number"
    body = assert_error(api.post("/api/v1/webhooks/", {"url": "https://hooks.example.com/x", "is_active": 0},
                                 format="json"), 400, field="is_active")
    assert body["detail"] == "is_active: must be a boolean, not a number"


def test_types_are_checked_inside_lists_and_objects(api):
    body = assert_error(api.post("/api/v1/subscribers/analyze-fields", {"listIds": ["News", 7]}, format="json"), 400,
                        field="listIds")
    assert body["errors"] == {"listIds": {"1": ["must be a string, not a number"]}}


def test_an_empty_query_parameter_that_is_not_text_is_refused(api):
    body = assert_error(api.get("/api/v1/subscribers/audit/logs?start_date="), 400, field="start_date")
    assert body["detail"] == "start_date: must not be empty (leave the parameter out instead)"
    assert api.get("/api/v1/subscribers/audit/logs?entity_type=").status_code == 200


def test_a_page_size_out_of_range_is_a_400_not_the_default(api):
    body = assert_error(api.get("/api/v1/templates/", {"limit": 0}), 400, field="limit")
    assert body["detail"] == "limit: must be a whole number from 1 to 200"
    assert_error(api.get("/api/v1/templates/", {"limit": "ten"}), 400, field="limit")
    assert api.get("/api/v1/templates/", {"limit": 200}).status_code == 200


def test_a_page_that_is_not_a_whole_number_from_1_is_a_400_not_the_first_or_last_page(api):
    for page in ("", "0", "last", "1.5", "²"):
        body = assert_error(api.get(f"/api/v1/templates/?page={page}"), 400, field="page")
        assert body["detail"] == "page: must be a whole number from 1"
    assert api.get("/api/v1/templates/", {"page": 1}).status_code == 200


def test_a_page_past_the_last_is_json_404(api):
    assert_error(api.get("/api/v1/templates/", {"page": 5}), 404, detail="Invalid page")


def test_the_batch_api_keeps_its_status_error_key(api):
    body = assert_error(api.get("/api/v1/outbox/batch/0123456789abcdef/status"), 404)
    assert body["status"] == "error"


def test_the_bulk_email_api_keeps_its_success_false_key(api):
    body = assert_error(api.get("/api/v1/bulk-email/job-status/not-a-job"), 404)
    assert body["success"] is False
