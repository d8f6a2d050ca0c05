"""The OpenAPI schema says what the API does: which values may be null, what a list answers, which
values a path takes, which bodies a route reads, and every status code with the Error shape.
(The whole API is held to it by test_api_contract.py; these pin the points one by one.)"""

import pytest

from inboxerr.openapi import ERROR_REF

UPLOADS = {"/api/v1/imports/csv", "/api/v1/campaigns/from-csv"}
METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS and path.startswith("/api/"):
                yield path, method, operation


def test_campaign_ids_that_can_be_null_are_declared_nullable(schema):
    fields = schema["components"]["schemas"]["Campaign"]["properties"]
    assert fields["template_id"]["nullable"] is True
    assert fields["import_id"]["nullable"] is True


def test_webhook_deliveries_are_declared_as_the_paginated_object_they_are(schema):
    ok = schema["paths"]["/api/v1/webhooks/{endpoint_id}/deliveries"]["get"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"]
    page = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(page["properties"]) == {"count", "next", "previous", "results"}


def test_the_seed_status_route_declares_its_two_values(schema):
    parameters = schema["paths"]["/api/v1/webhooks/update_by_id/{endpoint_id}/{status}"]["put"]["parameters"]
    status = next(p for p in parameters if p["name"] == "status")
    assert status["schema"]["enum"] == ["active", "inactive"]


def test_only_the_upload_routes_take_multipart_and_the_sms_relay_a_form(schema):
    media = {(path, method): set(op["requestBody"]["content"]) for path, method, op in operations(schema)
             if "requestBody" in op}
    for (path, method), types in media.items():
        if path in UPLOADS:
            assert types == {"multipart/form-data"}, path
        elif path == "/api/v1/sms/inbound":
            assert types == {"application/json", "application/x-www-form-urlencoded"}
        else:
            assert types == {"application/json"}, (method, path, types)


def test_every_operation_declares_its_errors_with_the_error_component(schema):
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        assert {"400", "401", "403", "406"} <= set(responses), (method, path)
        # Every route is throttled but the SMS relay, whose STOP must never wait.
        assert ("429" in responses) == (path != "/api/v1/sms/inbound"), (method, path)
        if "requestBody" in operation:
            assert {"413", "415"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        for code, response in responses.items():
            if code[0] in "45":
                assert response["content"]["application/json"]["schema"] == ERROR_REF, (method, path, code)


def test_conflicts_are_declared_where_they_happen(schema):
    for path, method in [("/api/v1/campaigns/{campaign_id}/start", "post"), ("/api/v1/subscribers/lists", "post"),
                         ("/api/v1/templates/{id}/", "delete"), ("/api/v1/imports/{job_id}/cancel", "post"),
                         ("/api/v1/outbox/batch/{batch_id}/retry", "post")]:
        assert "409" in schema["paths"][path][method]["responses"], (method, path)


def test_a_stored_webhook_url_is_text_and_a_new_one_is_held_to_a_pattern(schema):
    components = schema["components"]["schemas"]
    assert "format" not in components["Endpoint"]["properties"]["url"]
    written = components["EndpointWriteRequest"]["properties"]["url"]
    assert written["pattern"].startswith("^https?://") and "format" not in written


def test_subscriber_bodies_refuse_unknown_fields_in_the_schema_too(schema):
    assert schema["components"]["schemas"]["SubscriberWriteRequest"]["additionalProperties"] is False
