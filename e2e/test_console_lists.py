"""The console's reducer (static/console_lists.js, as console.js runs it) against the server's own
snapshots, Zulip's `verify_action` idea: after each lifecycle step, the frames the step published,
applied to the snapshot taken before it, must give exactly what a fresh snapshot taken after it shows.
Replayed on top of that fresh snapshot (as frames queued while a socket's snapshot is read are), and in
reverse order (as frames overtaken between server processes may come), they must change nothing."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy import select, update

from app import ROOT, agents, clock, conversations, events, labels, payloads, read_state, routing, supervision, timers
from app.console import snapshot
from app.extensions import db
from app.models import Agent, Conversation, Workstream
from tests.support import HOST_ORIGIN, TEST_DATABASE_URL, Clock, database_url, drop_database, migrated_app, seed
from tests.test_console_snapshot import agent_id, customer, rate, write

REDUCER = Path(ROOT) / "static" / "console_lists.js"


@pytest.fixture
def reducer(browser: Browser):
    """A blank page holding the console's reducer, as the console's page holds it (window.ConsoleLists)."""
    context = browser.new_context()
    page = context.new_page()
    page.add_script_tag(content=REDUCER.read_text())
    yield page
    context.close()


@pytest.fixture
def app(tmp_path):
    app = migrated_app(tmp_path, TESTING=True)
    yield app
    with app.app_context():
        db.engine.dispose()
    clock.set_source(None)
    if TEST_DATABASE_URL:
        drop_database(database_url(tmp_path))


@pytest.fixture
def world(app):
    return seed(app, [HOST_ORIGIN], {"ada": "Ada", "bo": "Bo"})


def parts_of(agent: Agent) -> list[dict]:
    """The snapshot exactly as the console's socket sends it."""
    return [json.loads(frame) for frame in snapshot.frames(snapshot.snapshot(agent))]


def view(page, parts: list[dict], frames: list[dict] = ()) -> dict:
    """The lists as the console shows them after loading `parts` and applying `frames`, including the
    summaries it fetches when its queue window moves onto conversations it knows only by id."""
    page.evaluate(
        """([parts, frames]) => {
            window.held = ConsoleLists.create();
            ConsoleLists.load(window.held, parts);
            for (const frame of frames) ConsoleLists.apply(window.held, frame);
        }""",
        [parts, list(frames)],
    )
    missing = page.evaluate("() => ConsoleLists.missing(window.held)")
    if missing:
        found = db.session.scalars(select(Conversation).where(Conversation.id.in_(missing))).all()
        summaries = json.loads(json.dumps(payloads.summaries(list(found))))
        page.evaluate(
            """([summaries, ids]) => {
                for (const s of summaries) ConsoleLists.applySummary(window.held, s);
                ConsoleLists.drop(window.held, ids);
            }""",
            [summaries, missing],
        )
    return page.evaluate("() => ConsoleLists.view(window.held)")


def comparable(shown: dict) -> dict:
    """Queue items are not sent the automated queue-position messages nor their customers' reading of
    them (every console would get each one); the agent sees both on opening the conversation."""
    for summary in shown["queue"]:
        if summary:
            for field in ("last_seq", "read_seq", "customer_read"):
                summary.pop(field)
    return shown


class Verify:
    """Runs a step with the console's channels subscribed, as Ada's socket is, and checks it."""

    def __init__(self, page, agent_id: int):
        self.page = page
        self.agent_id = agent_id
        self.steps = 0

    def ada(self) -> Agent:
        return db.session.get(Agent, self.agent_id)

    def __call__(self, step) -> list[dict]:
        db.session.remove()
        before = parts_of(self.ada())
        subscription = events.hub.subscribe([events.CONSOLE_CHANNEL, events.agent_channel(self.agent_id)])
        try:
            step()
        finally:
            db.session.remove()
            frames = []
            while (frame := subscription.get(timeout=0)) is not None:
                frames.append(json.loads(frame))
            subscription.close()
        after = parts_of(self.ada())
        fresh = comparable(view(self.page, after))
        assert comparable(view(self.page, before, frames)) == fresh
        # What a socket's queue held while its snapshot was read comes after the snapshot.
        assert comparable(view(self.page, after, frames)) == fresh
        # Frames about conversations may be overtaken on their way (between server processes): in any
        # order, none undoes a newer state. (Agent and capacity frames count in arrival order.)
        people = [f for f in frames if f["type"] in ("agent", "capacity")]
        overtaken = [f for f in reversed(frames) if f not in people]
        assert comparable(view(self.page, before, people + overtaken)) == fresh
        assert comparable(view(self.page, after, overtaken)) == fresh
        self.steps += 1
        return frames


def test_every_lifecycle_step_applied_to_a_snapshot_gives_a_fresh_snapshot(app, world, reducer):
    app.config["CONSOLE_QUEUE_WINDOW"] = 3
    with app.app_context():
        clock = Clock()
        ada_id, bo_id = agent_id(world.agents["ada"][0]), agent_id(world.agents["bo"][0])
        verify = Verify(reducer, ada_id)
        ada = verify.ada
        bo = lambda: db.session.get(Agent, bo_id)  # noqa: E731
        alice = customer(world, "alice", "Alice")

        verify(lambda: routing.set_presence(ada(), "available"))
        frames = verify(lambda: write(world, alice, "a1", "Hello, anyone?"))
        assert {f["type"] for f in frames} >= {"conversation", "notify", "capacity"}
        first = db.session.scalar(select(Conversation.id).where(Conversation.customer_id == alice))
        verify(lambda: routing.accept(ada(), first))
        verify(lambda: write(world, alice, "a2", "My invoice is wrong"))
        verify(lambda: conversations.post_agent_message(ada(), first, "r1", "Let me look"))
        last = db.session.get(Conversation, first).last_seq
        verify(lambda: read_state.customer_read(alice, world.workstream_id, first, last))
        label_id = labels.create(None, {"name": "billing", "colour": "#aa0000"}).id
        verify(lambda: labels.put_on(ada(), first, [label_id]))
        verify(lambda: conversations.park(ada(), first))
        verify(lambda: write(world, alice, "a3", "I am back"))

        verify(lambda: routing.set_presence(bo(), "available"))
        verify(lambda: routing.transfer(ada(), first, bo_id))
        verify(lambda: routing.accept(bo(), first))
        # Back to the queue: routing offers it to Ada, not to Bo who let it go.
        verify(lambda: routing.transfer(bo(), first, None))
        verify(lambda: conversations.post_agent_message(ada(), first, "r2", "I have it now"))

        # A queue longer than the console's window: three shown, the rest counted.
        verify(lambda: routing.set_presence(bo(), "away"))
        verify(lambda: routing.set_presence(ada(), "busy"))
        queued = [customer(world, f"queued-{i}", f"Queued {i}") for i in range(6)]
        for i, someone in enumerate(queued):
            verify(lambda someone=someone, i=i: write(world, someone, f"q{i}", f"Question {i}"))
        queue_ids = list(
            db.session.scalars(select(Conversation.id).where(Conversation.status == "open").order_by(Conversation.id))
        )
        assert len(queue_ids) == 6
        shown = view(reducer, parts_of(ada()))
        assert [s["id"] for s in shown["queue"]] == queue_ids[:3] and shown["queue_more"] == 3
        # A conversation past the window changes; one in it is taken, and the window moves on.
        verify(lambda: write(world, queued[5], "q5b", "Still waiting"))
        verify(lambda: routing.take(ada(), queue_ids[0]))
        verify(lambda: conversations.end(ada(), first))
        verify(lambda: rate(world, alice, first))
        verify(lambda: conversations.close_wrap_up(ada(), first))
        verify(lambda: routing.take(ada(), queue_ids[1]))

        # An offer runs out: back to the queue, and Ada becomes inactive.
        verify(lambda: routing.set_presence(ada(), "available"))
        verify(lambda: routing.dispatch())
        clock.advance(minutes=5)
        verify(lambda: timers.expire_offers(clock.now))

        # Supervision, renames, a disabled colleague, a new one.
        db.session.execute(update(Agent).where(Agent.id == bo_id).values(role="supervisor"))
        db.session.commit()
        verify(lambda: routing.set_presence(ada(), "available"))
        verify(lambda: supervision.reassign(bo(), queue_ids[2], ada_id))
        verify(lambda: agents.update(ada(), {"name": "Ada Lovelace"}))
        # Bo is pushed what waits; disabled, his conversations go back to the queue.
        verify(lambda: routing.set_presence(bo(), "available"))
        assert db.session.scalar(select(Conversation.id).where(Conversation.agent_id == bo_id))
        verify(lambda: agents.update(bo(), {"disabled": True}))
        verify(lambda: agents.add_agent("cy@example.com", "Cy", "agent", None))

        # What is not sent to every console: the automated messages of a queue (a live workstream's
        # queue positions) and a queued customer's reading (comparable() leaves them out).
        app.config["CONSOLE_QUEUE_WINDOW"] = 50
        verify(lambda: routing.set_presence(ada(), "away"))
        live = Workstream(name="Live", mode="live", auth_setting_id=world.auth_setting_id)
        db.session.add(live)
        db.session.commit()
        live_id, visitor = live.id, customer(world, "visitor", "Visitor")
        verify(lambda: conversations.post_customer_message(live_id, visitor, "v1", "Is this live?"))
        told = db.session.scalar(select(Conversation).where(Conversation.customer_id == visitor))
        assert told.status == "open" and told.last_seq > 1
        verify(lambda: read_state.customer_read(visitor, live_id, told.id, told.last_seq))

        # Left alone for the workstream's time: everything open closes.
        clock.advance(days=31)
        verify(lambda: timers.auto_close(clock.now))
        assert verify.steps > 30
