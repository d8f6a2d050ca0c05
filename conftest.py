"""Fixtures shared by every app's tests: users with the operator role, API clients as owner,
outsider and anonymous caller."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.test import APIClient

from inboxerr.accounts import roles_ensure
from inboxerr.tests.factories import UserFactory


def pytest_configure(config):
    """Each test process (`make test` runs two, see scripts/test.sh) gets its own IMPORT_DIR:
    uploads are named by job id, and two test databases hand out the same ids. The processes a
    test starts (servers, workers) inherit it through the environment."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    import_dir = Path(tempfile.gettempdir()) / f"inboxerr-tests-{os.getpid()}-{worker}" / "imports"
    os.environ["IMPORT_DIR"] = str(import_dir)
    django_settings.IMPORT_DIR = import_dir
    config.inboxerr_scratch = import_dir.parent


def pytest_unconfigure(config):
    scratch = getattr(config, "inboxerr_scratch", None)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Modules that start servers, workers or a browser go first: the two test processes share
    them out at the start, and the run does not end waiting on one long module. (After
    pytest-django's own ordering; pytest_runtest_setup below keeps any order safe.)"""
    items.sort(key=lambda item: not (item.get_closest_marker("slow") or item.get_closest_marker("browser")))


# Whether a transactional test has run since the database last held what the migrations wrote.
_database_flushed = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Every test finds the database its kind expects, whatever ran before it in this process.

    Tests run in two processes (scripts/test.sh), each taking whole modules, so a module of plain
    tests can follow a transactional one. A transactional test ends with a flush: the rows the
    migrations wrote (groups, rate limits, schedules) are gone and the content types come back
    under new ids. A plain test expects the migrated database, so it gets it back first; a
    serialized-rollback test reloads those rows under their original ids itself, so it gets empty
    tables first (reloading over the new content types would collide).
    """
    global _database_flushed
    from django.db import connection

    # Set only once the test database exists: before that the connection names the real one.
    if not hasattr(connection, "_test_serialized_contents"):
        return
    marker = item.get_closest_marker("django_db")
    kwargs = marker.kwargs if marker else {}
    fixtures = getattr(item, "fixturenames", ())
    transactional = bool(kwargs.get("transaction") or kwargs.get("reset_sequences")) or any(
        name in fixtures for name in ("transactional_db", "live_server"))
    uses_database = marker is not None or transactional or "db" in fixtures
    if not uses_database:
        return
    serialized = bool(kwargs.get("serialized_rollback"))
    restore = _database_flushed and not transactional
    if serialized or restore:
        from django.contrib.contenttypes.models import ContentType
        from django.core.management import call_command
        from pytest_django.plugin import blocking_manager_key

        with item.config.stash[blocking_manager_key].unblock():
            call_command("flush", verbosity=0, interactive=False, inhibit_post_migrate=True,
                         reset_sequences=False)  # reloaded rows keep their ids; new ones follow them
            if restore:
                connection.creation.deserialize_db_from_string(connection._test_serialized_contents)
        # Content types are cached by id in this process; the ids just changed.
        ContentType.objects.clear_cache()
        _database_flushed = False
    if transactional:
        _database_flushed = True


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
