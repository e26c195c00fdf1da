import shutil

import pytest

from app import clock
from app.extensions import db
from tests.openapi_check import CheckedClient
from tests.support import (
    HOST_ORIGIN,
    TEST_DATABASE_URL,
    app_for,
    create_database,
    database_url,
    drop_database,
    migrated_app,
    seed,
    use_database,
)


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """Migrations and seed data (password hashing is slow) run once; each test copies the database (the
    SQLite file, or a PostgreSQL database made with CREATE DATABASE … TEMPLATE)."""
    path = tmp_path_factory.mktemp("template")
    app = migrated_app(path)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada", "bo": "Bo"})
    with app.app_context():
        db.engine.dispose()
    return path, world


@pytest.fixture
def app(template, tmp_path):
    instance = tmp_path / "instance"
    shutil.copytree(template[0], instance)
    if TEST_DATABASE_URL:
        use_database(instance, create_database(template=database_url(template[0])))
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
