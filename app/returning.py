"""A returning widget's hello, read cheaply: most hellos are a customer whose record the token does not
change, with nothing new since the cursor the widget holds (or with no conversation at all). A reconnect
herd after a restart is all of them, and customers moving from page to page are a steady stream.

Those cases cost two reads on the database driver (driver.py), outside any transaction. Anything else
(a new customer, a changed name or email, messages to send, a newer or an ended conversation) answers
None, and the caller takes the general path in conversations.py, which is the reference for what a
hello reads. The welcome is the same either way: `tests/test_returning.py` holds the two to it.
"""

from dataclasses import dataclass
from datetime import datetime

from . import conversations, driver
from .customer_auth import Identity
from .extensions import db
from .models import CURRENT_STATUSES, ENDED_STATUSES, Agent, Conversation, Customer, Workstream

_CUSTOMER = f"""
SELECT id, display_name, email FROM {Customer.__tablename__}
WHERE auth_setting_id = :auth_setting_id AND sub = :sub
"""
# A visitor's (no authentication setting): a bound NULL would compare `= NULL`, which matches no row.
_VISITOR = f"SELECT id, display_name, email FROM {Customer.__tablename__} WHERE auth_setting_id IS NULL AND sub = :sub"
# The held conversation and whether there is a newer one: two rows at most.
_HELD_AND_NEWER = f"""
SELECT c.id, c.status, c.agent_id, a.name, c.last_seq, c.customer_read_seq, c.created_at, c.ended_at
FROM {Conversation.__tablename__} c LEFT JOIN {Agent.__tablename__} a ON a.id = c.agent_id
WHERE c.customer_id = :customer_id AND c.workstream_id = :workstream_id AND c.id >= :conversation_id
ORDER BY c.id LIMIT 2
"""
_ANY = f"""
SELECT 1 FROM {Conversation.__tablename__} WHERE customer_id = :customer_id AND workstream_id = :workstream_id
LIMIT 1
"""


@dataclass(slots=True)
class _Agent:
    name: str


@dataclass(slots=True)
class Held:
    """The conversation a widget holds, as much as the welcome says of it (payloads.widget_conversation):
    what `Conversation` has, without the ORM's instrumentation."""

    id: int
    status: str
    agent_id: int | None
    agent: _Agent | None
    workstream: Workstream
    last_seq: int
    customer_read_seq: int
    created_at: datetime
    ended_at: datetime | None

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES


class _Statements:
    def __init__(self, sqlite: bool):
        self.customer, self.visitor = driver.native(_CUSTOMER, sqlite), driver.native(_VISITOR, sqlite)
        self.held_and_newer, self.any = driver.native(_HELD_AND_NEWER, sqlite), driver.native(_ANY, sqlite)


# By whether the engine is SQLite's.
_STATEMENTS = {True: _Statements(True), False: _Statements(False)}


def customer_id(identity: Identity) -> int | None:
    """The customer's id when their record exists and this token changes nothing in it; None when
    `conversations.customer_for` has a record to write."""
    engine = db.engine
    statements = _STATEMENTS[driver.is_sqlite(engine)]
    with driver.reading(engine) as cursor:
        if identity.auth_setting_id is None:
            cursor.execute(statements.visitor, {"sub": identity.sub})
        else:
            cursor.execute(statements.customer, {"auth_setting_id": identity.auth_setting_id, "sub": identity.sub})
        rows = cursor.fetchall()
    if not rows:
        return None
    found, display_name, email = rows[0]
    # What customer_for would write.
    if (identity.display_name and identity.display_name != display_name) or identity.email != email:
        return None
    return found


def backlog(
    customer_id: int, workstream: Workstream, conversation_id: object, after: object
) -> tuple[bool, list[tuple[Held, list, bool]]] | None:
    """`conversations.backlog` when the widget is missing nothing: its held conversation, still going,
    with no message after its cursor and none newer (reset False); or no conversation at all (reset
    True, nothing). None for anything else."""
    engine = db.engine
    statements = _STATEMENTS[driver.is_sqlite(engine)]
    keys = {"customer_id": customer_id, "workstream_id": workstream.id}
    with driver.reading(engine) as cursor:
        if not conversations.is_cursor(conversation_id, after):
            cursor.execute(statements.any, keys)
            return None if cursor.fetchall() else (True, [])
        cursor.execute(statements.held_and_newer, {**keys, "conversation_id": conversation_id})
        rows = cursor.fetchall()
    if len(rows) != 1:
        return None
    held_id, status, agent_id, agent_name, last_seq, read_seq, created_at, ended_at = rows[0]
    if held_id != conversation_id or after != last_seq or status not in CURRENT_STATUSES:
        return None
    held = Held(
        held_id,
        status,
        agent_id,
        None if agent_name is None else _Agent(agent_name),
        workstream,
        last_seq,
        read_seq or 0,
        driver.read_timestamp(created_at),
        driver.read_timestamp(ended_at),
    )
    return False, [(held, [], True)]
