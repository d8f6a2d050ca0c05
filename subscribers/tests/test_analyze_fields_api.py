"""POST /api/v1/subscribers/analyze-fields: the merge fields the chosen lists offer."""

import pytest

from subscribers.tests.helpers import ANALYZE, PERMISSION_DENIED, add, db_state, make_list, post_raw


@pytest.fixture
def lists(owner):
    news = make_list(owner, "Newsletter")
    promo = make_list(owner, "Promotions")
    add(news, standard_fields={"first_name": "A", "last_name": "B"}, custom_fields={"plan": "pro"})
    add(news, standard_fields={"first_name": "C"}, custom_fields={})
    add(promo, standard_fields={"company": "Initech"}, custom_fields={"city": "Paris", "plan": "free"})
    return news, promo


def test_owner_gets_universal_standard_and_custom_fields_of_the_chosen_lists(api, lists):
    response = api.post(ANALYZE, {"listIds": ["Newsletter", "Promotions"]}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "universal": ["email"],
        "standard": ["company", "first_name", "last_name"],
        "custom": ["city", "plan"],
    }


def test_only_the_chosen_lists_are_analysed(api, lists):
    response = api.post(ANALYZE, {"listIds": ["Newsletter"]}, format="json")

    assert response.json() == {"universal": ["email"], "standard": ["first_name", "last_name"], "custom": ["plan"]}


def test_lists_keyed_on_different_fields_share_no_universal_field(api, lists, owner):
    add(make_list(owner, "Texts", key_field="phone"), email="", phone="+14155552671", custom_fields={"carrier": "x"})

    response = api.post(ANALYZE, {"listIds": ["Newsletter", "Texts"]}, format="json")

    assert response.json()["universal"] == []
    assert response.json()["custom"] == ["carrier", "plan"]


def test_an_empty_list_offers_only_its_key_field(api, owner):
    make_list(owner, "Empty")

    response = api.post(ANALYZE, {"listIds": ["Empty"]}, format="json")

    assert response.json() == {"universal": ["email"], "standard": [], "custom": []}


def test_a_missing_list_gives_404_naming_it(api, lists):
    response = api.post(ANALYZE, {"listIds": ["Newsletter", "Ghost"]}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "List 'Ghost' not found", "field": "list_name"}


def test_outsider_cannot_analyse_the_owners_lists(outsider_api, lists):
    response = outsider_api.post(ANALYZE, {"listIds": ["Newsletter"]}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "List 'Newsletter' not found", "field": "list_name"}


@pytest.mark.parametrize(
    "payload",
    [{"listIds": []}, {}, {"listIds": "Newsletter"}, {"listIds": [{"name": "Newsletter"}]}, {"list_ids": ["Newsletter"]}],
)
def test_a_malformed_list_ids_is_refused_naming_list_ids(api, lists, payload):
    before = db_state()

    response = api.post(ANALYZE, payload, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("listIds")
    assert db_state() == before


def test_invalid_json_body_is_refused_for_analyze_fields(api, lists):
    response = post_raw(api, ANALYZE, '{"listIds": ["Newsletter"')

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_anonymous_caller_cannot_analyse_fields(anon_api, lists):
    response = anon_api.post(ANALYZE, {"listIds": ["Newsletter"]}, format="json")

    assert response.status_code == 401
    assert "universal" not in response.json()


def test_user_without_permissions_cannot_analyse_fields(no_perms_api, lists):
    response = no_perms_api.post(ANALYZE, {"listIds": ["Newsletter"]}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED
