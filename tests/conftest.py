import shutil

import pytest

from app import clock, create_app
from app.extensions import db
from tests.support import HOST_ORIGIN, migrated_app, seed


@pytest.fixture(scope="session")
def template_instance(tmp_path_factory):
    """The schema is built once by the migrations; each test copies the resulting database."""
    path = tmp_path_factory.mktemp("template")
    migrated_app(path)
    return path


@pytest.fixture
def app(template_instance, tmp_path):
    instance = tmp_path / "instance"
    shutil.copytree(template_instance, instance)
    app = create_app({"INSTANCE_PATH": instance, "TESTING": True, "WTF_CSRF_ENABLED": False})
    yield app
    with app.app_context():
        db.engine.dispose()
    clock.set_source(None)


@pytest.fixture
def world(app):
    return seed(app, [HOST_ORIGIN], {"ada": "Ada", "bo": "Bo"})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
