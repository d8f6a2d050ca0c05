"""Fixtures shared by every app's tests: users with the operator role, API clients as owner,
outsider and anonymous caller."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from inboxerr.accounts import roles_ensure
from inboxerr.tests.factories import UserFactory


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Tests create many users; the production hasher would spend most of the suite's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def generous_api_throttles(settings):
    """Many tests call the API in loops from one address: rates no test reaches, and every test
    starts with empty throttle logs. Tests of the throttles themselves set low rates."""
    settings.API_THROTTLE_USER = "100000/min"
    settings.API_THROTTLE_ANON = "100000/min"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def operators_group(db):
    return roles_ensure()


@pytest.fixture
def owner(operators_group):
    user = UserFactory(username="owner")
    user.groups.add(operators_group)
    return user


@pytest.fixture
def outsider(operators_group):
    """A second operator with the same permissions, who must see none of the owner's data."""
    user = UserFactory(username="outsider")
    user.groups.add(operators_group)
    return user


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def no_perms_user(db):
    return UserFactory(username="nobody")


def _client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(owner) -> APIClient:
    return _client_for(owner)


@pytest.fixture
def outsider_api(outsider) -> APIClient:
    return _client_for(outsider)


@pytest.fixture
def superuser_api(superuser) -> APIClient:
    return _client_for(superuser)


@pytest.fixture
def no_perms_api(no_perms_user) -> APIClient:
    return _client_for(no_perms_user)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


pytest_plugins = ["inboxerr.tests.browser"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the test item, so fixtures can tell a failed test in teardown
    # (the browser fixtures keep a screenshot of it).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
