"""GET /api/v1/subscribers/search: strategies, filters, sorting, pagination, ownership and the
seed's response shape."""

import pytest

from subscribers.tests.helpers import PERMISSION_DENIED, SEARCH, add, db_state, make_list

PAGINATION_KEYS = {"current_page", "total_pages", "total", "limit", "has_next", "has_prev"}


@pytest.fixture
def people(owner, outsider):
    news = make_list(owner, "News")
    promo = make_list(owner, "Promo")
    secret = make_list(outsider, "Secret")
    return {
        "alice": add(news, email="alice@example.com", name="Alice Smith"),
        "bob": add(news, email="bob@example.com", name="Bob Jones", status="unsubscribed"),
        "carol": add(news, email="carol@shop.io", name="Carol", phone="+14155552671"),
        "dave": add(promo, email="dave@example.com", name="Dave"),
        "outsider_alice": add(secret, email="alice@example.com", name="Alice Elsewhere"),
    }


def emails(response) -> list[str]:
    return [row["email"] for row in response.json()["subscribers"]]


def test_search_response_has_exactly_the_seeds_keys(api, people):
    response = api.get(SEARCH, {"search": "bob@example.com"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"subscribers", "pagination", "performance"}
    assert set(body["pagination"]) == PAGINATION_KEYS
    assert body["pagination"] == {
        "current_page": 1, "total_pages": 1, "total": 1, "limit": 50, "has_next": False, "has_prev": False,
    }
    assert set(body["performance"]) == {"query_time", "strategy", "results_count"}
    assert body["performance"]["query_time"].endswith("s")
    assert body["performance"]["results_count"] == 1
    row = body["subscribers"][0]
    assert row["_id"] == str(people["bob"].pk)
    assert row["list"] == "News"
    assert row["status"] == "unsubscribed"


def test_search_without_a_term_returns_every_subscriber_of_the_owner(api, people):
    response = api.get(SEARCH)

    assert response.status_code == 200
    assert sorted(emails(response)) == ["alice@example.com", "bob@example.com", "carol@shop.io", "dave@example.com"]
    assert response.json()["pagination"]["total"] == 4


def test_a_full_address_is_looked_up_exactly_and_case_insensitively(api, people):
    response = api.get(SEARCH, {"search": "ALICE@Example.com"})

    assert response.json()["performance"]["strategy"] == "exact"
    assert [row["id"] for row in response.json()["subscribers"]] == [people["alice"].pk]


def test_the_start_of_an_address_is_searched_by_prefix(api, people):
    response = api.get(SEARCH, {"search": "carol@sh"})

    assert response.json()["performance"]["strategy"] == "prefix"
    assert emails(response) == ["carol@shop.io"]


def test_digits_are_searched_as_a_phone_number(api, people):
    response = api.get(SEARCH, {"search": "(415) 555-2671"})

    assert response.json()["performance"]["strategy"] == "phone"
    assert emails(response) == ["carol@shop.io"]


def test_free_text_matches_names_case_insensitively(api, people):
    response = api.get(SEARCH, {"search": "jones"})

    assert response.json()["performance"]["strategy"] == "contains"
    assert emails(response) == ["bob@example.com"]


def test_free_text_matches_the_list_name(api, people):
    response = api.get(SEARCH, {"search": "promo"})

    assert emails(response) == ["dave@example.com"]


def test_an_explicit_search_mode_overrides_the_smart_strategy(api, people):
    response = api.get(SEARCH, {"search": "example", "search_mode": "contains", "sort_by": "email", "sort_order": "asc"})

    assert response.json()["performance"]["strategy"] == "contains"
    assert emails(response) == ["alice@example.com", "bob@example.com", "dave@example.com"]


def test_prefix_mode_does_not_match_the_middle_of_an_address(api, people):
    response = api.get(SEARCH, {"search": "example", "search_mode": "prefix"})

    assert response.json()["subscribers"] == []


def test_list_name_filter_restricts_the_results_to_that_list(api, people):
    response = api.get(SEARCH, {"list_name": "Promo"})

    assert emails(response) == ["dave@example.com"]
    assert response.json()["pagination"]["total"] == 1


def test_status_filter_restricts_the_results_to_that_status(api, people):
    response = api.get(SEARCH, {"status": "unsubscribed"})

    assert emails(response) == ["bob@example.com"]


def test_filters_combine(api, people):
    response = api.get(SEARCH, {"list_name": "News", "status": "active", "search": "example", "search_mode": "contains"})

    assert emails(response) == ["alice@example.com"]


@pytest.mark.parametrize(
    "order, expected",
    [
        ("asc", ["alice@example.com", "bob@example.com", "carol@shop.io", "dave@example.com"]),
        ("desc", ["dave@example.com", "carol@shop.io", "bob@example.com", "alice@example.com"]),
    ],
)
def test_results_are_sorted_by_the_chosen_field_and_direction(api, people, order, expected):
    response = api.get(SEARCH, {"sort_by": "email", "sort_order": order})

    assert emails(response) == expected


def test_default_sort_is_newest_first(api, people):
    response = api.get(SEARCH)

    assert emails(response)[0] == "dave@example.com"
    assert emails(response)[-1] == "alice@example.com"


def test_pages_walk_through_the_results(api, people):
    first = api.get(SEARCH, {"limit": 3, "sort_by": "email", "sort_order": "asc"}).json()
    second = api.get(SEARCH, {"limit": 3, "page": 2, "sort_by": "email", "sort_order": "asc"}).json()

    assert first["pagination"] == {
        "current_page": 1, "total_pages": 2, "total": 4, "limit": 3, "has_next": True, "has_prev": False,
    }
    assert second["pagination"] == {
        "current_page": 2, "total_pages": 2, "total": 4, "limit": 3, "has_next": False, "has_prev": True,
    }
    assert [r["email"] for r in second["subscribers"]] == ["dave@example.com"]
    assert second["performance"]["results_count"] == 1


def test_outsider_search_never_returns_the_owners_subscribers(outsider_api, people):
    exact = outsider_api.get(SEARCH, {"search": "alice@example.com"})
    broad = outsider_api.get(SEARCH, {"search": "example", "search_mode": "contains"})

    assert [row["id"] for row in exact.json()["subscribers"]] == [people["outsider_alice"].pk]
    assert [row["id"] for row in broad.json()["subscribers"]] == [people["outsider_alice"].pk]
    assert outsider_api.get(SEARCH, {"search": "jones"}).json()["subscribers"] == []


def test_outsider_filtering_on_the_owners_list_gets_404_like_a_missing_list(outsider_api, people):
    owners_list = outsider_api.get(SEARCH, {"list_name": "News"})
    missing = outsider_api.get(SEARCH, {"list_name": "Nowhere"})

    assert owners_list.status_code == missing.status_code == 404
    assert owners_list.json() == {"detail": "List 'News' not found", "field": "list_name"}
    assert missing.json() == {"detail": "List 'Nowhere' not found", "field": "list_name"}


def test_superuser_search_spans_every_owner(superuser_api, people):
    response = superuser_api.get(SEARCH, {"search": "alice@example.com"})

    assert sorted(row["id"] for row in response.json()["subscribers"]) == sorted(
        [people["alice"].pk, people["outsider_alice"].pk]
    )
    assert superuser_api.get(SEARCH).json()["pagination"]["total"] == 5


def test_superuser_must_name_the_owner_when_two_owners_share_a_list_name(superuser_api, people, outsider):
    make_list(outsider, "News")

    ambiguous = superuser_api.get(SEARCH, {"list_name": "News"})
    named = superuser_api.get(SEARCH, {"list_name": "News", "owner": "owner"})

    assert ambiguous.status_code == 400
    assert ambiguous.json()["field"] == "owner"
    assert "owner=" in ambiguous.json()["detail"]
    assert named.status_code == 200
    assert named.json()["pagination"]["total"] == 3


def test_a_count_past_the_cap_is_reported_as_an_estimate(api, people, settings):
    settings.SEARCH_COUNT_CAP = 2

    response = api.get(SEARCH, {"search": "example", "search_mode": "contains", "limit": 1})

    pagination = response.json()["pagination"]
    assert response.status_code == 200
    assert pagination["total_is_estimate"] is True
    assert pagination["total"] >= 2
    assert pagination["has_next"] is True
    assert len(response.json()["subscribers"]) == 1


def test_a_count_under_the_cap_is_exact_and_not_flagged(api, people, settings):
    settings.SEARCH_COUNT_CAP = 10

    response = api.get(SEARCH, {"search": "example", "search_mode": "contains"})

    assert response.json()["pagination"]["total"] == 3
    assert "total_is_estimate" not in response.json()["pagination"]


def test_anonymous_caller_cannot_search(anon_api, people):
    response = anon_api.get(SEARCH, {"search": "alice@example.com"})

    assert response.status_code == 401
    assert "subscribers" not in response.json()


def test_user_without_permissions_cannot_search(no_perms_api, people):
    response = no_perms_api.get(SEARCH)

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 500}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"sort_by": "password"}, "sort_by"),
        ({"sort_order": "sideways"}, "sort_order"),
        ({"status": "sleeping"}, "status"),
        ({"search_mode": "psychic"}, "search_mode"),
    ],
)
def test_bad_search_parameters_are_refused_naming_the_parameter(api, people, params, field):
    before = db_state()

    response = api.get(SEARCH, params)

    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith(f"{field}:")
    assert field in body["errors"]
    assert db_state() == before


def test_an_absurd_page_number_is_refused_naming_page_rather_than_failing(api, people):
    # OFFSET (page - 1) * limit overflows PostgreSQL's bigint: this must be a 400, not a 500.
    api.raise_request_exception = False

    response = api.get(SEARCH, {"page": 10**19, "search": "example", "search_mode": "contains"})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("page:")


@pytest.mark.parametrize("term", ["%", "_", "%@%"])
def test_like_wildcards_in_a_term_are_matched_literally(api, people, term):
    response = api.get(SEARCH, {"search": term, "search_mode": "contains"})

    assert response.status_code == 200
    assert response.json()["subscribers"] == []
