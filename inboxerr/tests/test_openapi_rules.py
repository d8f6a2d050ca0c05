"""The rules across fields that the schema states (anyOf/oneOf on a request body) are the API's:
for each body below, the request schema and the API agree on whether it is refused. (The contract
test finds the same with generated bodies; these are the edges, one by one.)"""

import copy

import pytest
from jsonschema import Draft7Validator

from campaigns import services
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberListFactory

pytestmark = pytest.mark.django_db

BLANKS = ["", " ", "\t\n", "\u00a0", "\u3000", "\x1c"]  # all trimmed away (Python's whitespace)


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema says it."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    return node


def request_validator(schema: dict, path: str, method: str) -> Draft7Validator:
    body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    root = {**_json_schema(copy.deepcopy(body)), "components": _json_schema(schema["components"])}
    return Draft7Validator(root)


def _agree(validator: Draft7Validator, response, body: dict, ok: int) -> None:
    valid = validator.is_valid(body)
    assert response.status_code == (ok if valid else 400), (body, valid, response.content[:300])


def test_a_new_template_needs_a_text_or_an_html_body(schema, api):
    validator = request_validator(schema, "/api/v1/templates/", "post")
    bodies = [{"body_text": "Hi"}, {"body_html": "<p>Hi</p>"}, {"body_text": "Hi", "body_html": "<p>Hi</p>"},
              {"body_text": " ", "body_html": "<p>Hi</p>"}, {"body_text": "Hi", "body_html": ""}, {}]
    bodies += [{"body_text": blank} for blank in BLANKS] + [{"body_text": blank, "body_html": blank} for blank in BLANKS]
    bodies += [{"body_text": "\ufeff"}]  # not whitespace to Python: a body
    for number, body in enumerate(bodies):
        body = {"name": f"Template {number}", "subject": "Hello", **body}
        _agree(validator, api.post("/api/v1/templates/", body, format="json"), body, 201)
    assert not validator.is_valid({"name": "No body", "body_text": "\u2003"})


def test_an_update_does_not_need_a_body_it_has_already(schema, api, owner):
    template = services.template_create(actor=Actor(user=owner, source="api"), owner=owner, name="Kept",
                                        subject="Hi", body_text="Hello")
    assert "anyOf" not in schema["components"]["schemas"]["TemplateRequest"]
    assert "anyOf" not in schema["components"]["schemas"]["PatchedTemplateRequest"]
    response = api.patch(f"/api/v1/templates/{template.pk}/", {"subject": "Hello again"}, format="json")
    assert response.status_code == 200, response.content


def test_a_campaign_has_exactly_one_of_a_template_and_its_own_content(schema, api, owner):
    validator = request_validator(schema, "/api/v1/campaigns", "post")
    template = services.template_create(actor=Actor(user=owner, source="api"), owner=owner, name="T",
                                        subject="Hi", body_text="Hello")
    SubscriberListFactory(owner=owner, name="News")
    bodies = [{"template_id": template.pk}, {"message_content": "Hello"},
              {"template_id": template.pk, "message_content": "Hello"}, {},
              {"template_id": None}, {"template_id": None, "message_content": "Hello"},
              {"template_id": template.pk, "message_content": ""}, {"template_id": template.pk, "message_content": "  "},
              {"template_id": 0, "message_content": "Hello"}, {"template_id": -5, "message_content": "Hello"},
              {"template_id": 0}]
    bodies += [{"message_content": blank} for blank in BLANKS]
    for number, body in enumerate(bodies):
        body = {"name": f"Launch {number}", "channel": "email", "subject": "Hi", "list_names": ["News"], **body}
        _agree(validator, api.post("/api/v1/campaigns", body, format="json"), body, 201)


@pytest.mark.parametrize("path", ["/api/v1/bulk-email/send-reminders", "/api/v1/bulk-email/send-instructor-reminders"])
def test_a_reminder_job_needs_at_least_one_recipient(schema, api, owner, path):
    validator = request_validator(schema, path, "post")
    SubscriberListFactory(owner=owner, name="News")
    bodies = [{}, {"emails": []}, {"emails": [], "subscriber_ids": [], "instructor_ids": [], "list_names": []},
              {"emails": ["ann@example.com"]}, {"emails": [], "list_names": ["News"]},
              {"personal_message": "Soon", "term": "Spring"}]
    for body in bodies:
        response = api.post(path, body, format="json")
        # An empty list is a job with nothing to send (400), not a missing recipient: only the
        # schema's rule is compared here.
        if validator.is_valid(body):
            assert "give at least one of" not in response.json().get("detail", ""), body
        else:
            assert response.status_code == 400 and response.json()["field"] == "recipients", (body, response.content)
    # No body at all is a body without recipients: the schema requires one.
    assert schema["paths"][path]["post"]["requestBody"]["required"] is True
    assert api.post(path).status_code == 400
    assert validator.is_valid({"emails": ["ann@example.com"]})
    assert api.post(path, {"emails": ["ann@example.com"]}, format="json").status_code == 202
