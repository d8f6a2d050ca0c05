"""GET /api/v1/subscribers/list/{list_name}: one page of a list, newest first, with search."""

import pytest

from subscribers.tests.helpers import PERMISSION_DENIED, add, db_state, list_page_url, make_list


@pytest.fixture
def news(owner):
    lst = make_list(owner, "News")
    add(lst, email="ann@example.com", name="Ann", standard_fields={"first_name": "Ann"}, custom_fields={"plan": "premium"})
    add(lst, email="ben@example.com", name="Ben", standard_fields={"company": "Initech"}, custom_fields={"plan": "free"})
    add(lst, email="cid@other.org", name="Cid Moreau", custom_fields={"city": "Lyon"})
    return lst


def emails(response) -> list[str]:
    return [row["email"] for row in response.json()["subscribers"]]


def test_owner_reads_a_page_in_the_seeds_shape(api, news):
    response = api.get(list_page_url("News"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "subscribers", "pagination"}
    assert body["success"] is True
    assert body["pagination"] == {"current_page": 1, "total_pages": 1, "total": 3, "page_size": 50, "has_more": False}
    first = body["subscribers"][0]
    assert {"_id", "email", "status", "list", "created_at", "standard_fields", "custom_fields"} <= set(first)


def test_page_is_newest_first_with_full_field_details(api, news):
    body = api.get(list_page_url("News")).json()

    assert [row["email"] for row in body["subscribers"]] == ["cid@other.org", "ben@example.com", "ann@example.com"]
    ann = body["subscribers"][2]
    assert ann["list"] == "News"
    assert ann["standard_fields"] == {"first_name": "Ann"}
    assert ann["custom_fields"] == {"plan": "premium"}


def test_pages_report_total_pages_and_has_more(api, news):
    first = api.get(list_page_url("News"), {"limit": 2}).json()
    second = api.get(list_page_url("News"), {"limit": 2, "page": 2}).json()

    assert first["pagination"] == {"current_page": 1, "total_pages": 2, "total": 3, "page_size": 2, "has_more": True}
    assert second["pagination"]["has_more"] is False
    assert [row["email"] for row in second["subscribers"]] == ["ann@example.com"]


def test_a_page_past_the_end_is_empty(api, news):
    body = api.get(list_page_url("News"), {"page": 9}).json()

    assert body["subscribers"] == []
    assert body["pagination"]["has_more"] is False


@pytest.mark.parametrize(
    "term, expected",
    [
        ("BEN@", ["ben@example.com"]),  # email, case-insensitive
        ("moreau", ["cid@other.org"]),  # name
        ("premium", ["ann@example.com"]),  # custom field value
        ("initech", ["ben@example.com"]),  # standard field value
        ("example.com", ["ben@example.com", "ann@example.com"]),
    ],
)
def test_search_spans_email_name_and_fields(api, news, term, expected):
    response = api.get(list_page_url("News"), {"search": term})

    assert emails(response) == expected
    assert response.json()["pagination"]["total"] == len(expected)


def test_search_only_looks_inside_the_named_list(api, news, owner):
    add(make_list(owner, "Other"), email="ben@elsewhere.org", name="Ben Two")

    response = api.get(list_page_url("News"), {"search": "ben"})

    assert emails(response) == ["ben@example.com"]


def test_a_search_count_past_the_cap_is_flagged_as_an_estimate(api, news, settings):
    settings.SEARCH_COUNT_CAP = 1

    pagination = api.get(list_page_url("News"), {"search": "example"}).json()["pagination"]

    assert pagination["total_is_estimate"] is True
    assert pagination["total"] >= 1


def test_outsider_gets_the_same_404_as_for_a_list_that_does_not_exist(outsider_api, news):
    hidden = outsider_api.get(list_page_url("News"))
    missing = outsider_api.get(list_page_url("Nowhere"))

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == {"detail": "List 'News' not found", "field": "list_name"}
    assert set(hidden.json()) == set(missing.json())


def test_superuser_reads_any_owners_list(superuser_api, news):
    response = superuser_api.get(list_page_url("News"))

    assert response.status_code == 200
    assert response.json()["pagination"]["total"] == 3


def test_anonymous_caller_cannot_read_a_list(anon_api, news):
    response = anon_api.get(list_page_url("News"))

    assert response.status_code == 401
    assert "subscribers" not in response.json()


def test_user_without_permissions_cannot_read_a_list(no_perms_api, news):
    response = no_perms_api.get(list_page_url("News"))

    assert response.status_code == 403
    assert response.json()["detail"] == PERMISSION_DENIED


@pytest.mark.parametrize(
    "params, field",
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": 500}, "limit"), ({"page": 0}, "page")],
)
def test_bad_paging_parameters_are_refused_naming_the_parameter(api, news, params, field):
    before = db_state()

    response = api.get(list_page_url("News"), params)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    assert db_state() == before


def test_an_absurd_page_number_is_refused_naming_page_rather_than_failing(api, news):
    api.raise_request_exception = False

    response = api.get(list_page_url("News"), {"page": 10**19})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("page:")


@pytest.mark.parametrize(("term", "expected"), [
    ("%", ["dee@example.com"]),  # a percent sign in a field value, not "anything"
    ("_", ["dee@example.com"]),  # an underscore, not "any one character"
    ("50%", ["dee@example.com"]),
    ("\\", []),
])
def test_search_terms_are_text_not_patterns(api, news, term, expected):
    add(news, email="dee@example.com", name="Dee", custom_fields={"offer": "50% off_now"})

    response = api.get(list_page_url("News"), {"search": term})

    assert response.status_code == 200
    assert emails(response) == expected


@pytest.mark.parametrize(("term", "expected"), [
    ("com  Eve", []),  # across the address and the name: in the haystack, in no one value
    ('"Lyon"', []),  # the quotes the haystack wraps JSON strings in
    ("\"Ryan\"", ["eve@example.com"]),  # quotes inside a value, which the haystack escapes
    ("back\\slash", ["eve@example.com"]),
    ("1.5", ["eve@example.com"]),  # a number value
    ("null", []),  # a JSON null is no value
    ("ZÜRICH", ["eve@example.com"]),  # accents, case-insensitive
    ("yo", ["cid@other.org"]),  # too short for a trigram: the exact search alone
])
def test_search_matches_values_exactly_whatever_the_index_lets_through(api, news, term, expected):
    add(news, email="eve@example.com", name='Eve "Ryan" O',
        custom_fields={"note": "back\\slash", "price": 1.50, "gone": None, "city": "Zürich"})

    response = api.get(list_page_url("News"), {"search": term})

    assert emails(response) == expected


def test_a_list_search_is_answered_from_the_trigram_index(news):
    from django.db import connection

    from subscribers.selectors import SEARCH_HAYSTACK

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a three-row table: make the index the only way in
        cursor.execute(f"EXPLAIN SELECT id FROM subscribers_subscriber WHERE {SEARCH_HAYSTACK} ILIKE %s", ["%lyon%"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "sub_search_haystack_trgm" in plan
