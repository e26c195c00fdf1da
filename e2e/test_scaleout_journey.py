"""The foundation journey once more, scaled out: the widget talks to one server process, the console to
another, sharing PostgreSQL and Redis."""

import secrets

import pytest

from e2e.conftest import Console, HostSite, Widget
from e2e.test_persistent_conversation import (
    test_customer_writes_agent_sees_it_within_a_second_and_replies as journey,
)
from tests.support import (
    TEST_REDIS_URL,
    ChatServer,
    database_url,
    free_port,
    migrated_app,
    needs_scale_out,
    seed,
    use_database,
)

pytestmark = [pytest.mark.database, needs_scale_out]


@pytest.fixture
def cluster(tmp_path):
    """Server A for the customer's website, server B for the agents' console."""
    host_port = free_port()
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    world = seed(migrated_app(first), [f"http://127.0.0.1:{host_port}"], {"ada": "Ada"})
    use_database(second, database_url(first))
    env = {"REDIS_URL": TEST_REDIS_URL, "SECRET_KEY": secrets.token_urlsafe(32)}
    a, b = ChatServer.start_together(ChatServer(first, env), ChatServer(second, env))
    site = HostSite(a.url, world, host_port)
    yield a, b, site, world
    site.close()
    a.stop()
    b.stop()


@pytest.fixture
def customer(contexts, cluster):
    _a, _b, site, _world = cluster

    def open_as(sub: str = "alice", **options) -> Widget:
        page = contexts().new_page()
        page.goto(site.url(sub, **options))
        return Widget(page).open()

    return open_as


@pytest.fixture
def console(contexts, cluster):
    _a, b, _site, world = cluster

    def sign_in(key: str = "ada") -> Console:
        email, password = world.agents[key]
        return Console(contexts().new_page(), b).sign_in(email, password)

    return sign_in


def test_the_journey_with_the_widget_on_one_process_and_the_console_on_another(customer, console):
    journey(customer, console)
