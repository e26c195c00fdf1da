from pathlib import Path

import pytest

from app import clock
from app.extensions import db
from tests.openapi_check import CheckedClient
from tests.support import (
    HOST_ORIGIN,
    TEST_DATABASE_URL,
    app_for,
    copy_instance,
    database_url,
    drop_database,
    drop_leftover_databases,
    fail_unmarked_database_skip,
    migrated_app,
    quick_password_hashes,
    seed,
)

# Which tests rerun on PostgreSQL. `make test` runs every test on SQLite, then once more on PostgreSQL and
# Redis only those marked `database` (`pytest -m database`): what can turn out differently on another
# database or needs Redis. That is
# - every test in tests/: domain, HTTP, socket, CLI and migration tests nearly all go through SQL (queries,
#   locking, constraints, NUL bytes and integer ranges that only PostgreSQL refuses), and new ones are
#   covered without anyone having to remember; except the modules that say
#   `pytestmark = pytest.mark.database_independent` because nothing in them can depend on the database
#   (pure functions, HTTP headers, SQLite's own files);
# - in e2e/, only the modules that say `pytestmark = pytest.mark.database` (two server processes sharing
#   PostgreSQL and Redis): a browser test that passes on SQLite shows nothing new on PostgreSQL.
# A test skipped for want of PostgreSQL or Redis that is not marked `database` fails: it would run nowhere.
TESTS = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if TESTS in item.path.parents and not item.get_closest_marker("database_independent"):
            item.add_marker(pytest.mark.database)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    fail_unmarked_database_skip(item, outcome.get_result())


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish():
    drop_leftover_databases()


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """Migrations and seed data run once; each test copies the database (the SQLite file, or a PostgreSQL
    database made with CREATE DATABASE … TEMPLATE)."""
    path = tmp_path_factory.mktemp("template")
    app = migrated_app(path)
    with quick_password_hashes():
        world = seed(app, [HOST_ORIGIN], {"ada": "Ada", "bo": "Bo"})
    with app.app_context():
        db.engine.dispose()
    return path, world


@pytest.fixture
def app(template, tmp_path):
    instance = tmp_path / "instance"
    copy_instance(template[0], instance)
    app = app_for(instance, TESTING=True, WTF_CSRF_ENABLED=False)
    # Every answer a test receives is held to the API's OpenAPI document.
    app.test_client_class = CheckedClient
    yield app
    with app.app_context():
        db.engine.dispose()
    clock.set_source(None)
    if TEST_DATABASE_URL:
        drop_database(database_url(instance))


@pytest.fixture
def world(app, template):
    return template[1]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
