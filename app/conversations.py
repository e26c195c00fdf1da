"""The conversation lifecycle. Every state change goes through one function here.

Each function validates, writes in one transaction (commits it), records a ConversationEvent for each
state change and emits its frames, which the event hub publishes only after the commit. HTTP routes,
websocket handlers, the CLI and timers all call these.
"""

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from . import attachments, automated_messages, bots, clock, lifecycle, notifications, posting, rates, routing
from .config import MAX_MESSAGE_CHARS
from .customer_auth import Identity
from .errors import ChatError, not_found
from .extensions import db
from .models import IS_CURRENT, Agent, Conversation, Customer, Message, Workstream

T = TypeVar("T")
MAX_CLIENT_ID_CHARS = 64


def _retry_on_conflict(action: Callable[[], T]) -> T:
    """Run a write once more when a unique constraint shows that a concurrent writer got there first:
    the second attempt then finds that writer's row instead of inserting its own."""
    try:
        return action()
    except IntegrityError:
        db.session.rollback()
        return action()


def validate_body(body: object, *, may_be_empty: bool = False) -> str:
    """`may_be_empty`: a message that carries attachments needs no text."""
    if may_be_empty and body is None:
        body = ""
    if not isinstance(body, str):
        raise ChatError(400, "invalid_request", "The message body must be a string.")
    text = body.strip()
    if not text and not may_be_empty:
        raise ChatError(400, "empty_message", "The message is empty.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ChatError(400, "message_too_long", f"Messages are limited to {MAX_MESSAGE_CHARS} characters.")
    return text


def validate_client_id(client_id: object) -> str:
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= MAX_CLIENT_ID_CHARS:
        raise ChatError(400, "invalid_request", "client_id must be a string of 1 to 64 characters.")
    return client_id


# Reading ----------------------------------------------------------------------------------------------


# Statements a hello runs, built once: in a herd of reconnecting widgets, building and keying them again
# for every hello cost more than SQLite took to run them.
_CUSTOMER = select(Customer).where(
    Customer.auth_setting_id == bindparam("auth_setting_id"), Customer.sub == bindparam("sub")
)
# A visitor's (no authentication setting): a bound None would compare `= NULL`, which matches no row.
_VISITOR = select(Customer).where(Customer.auth_setting_id.is_(None), Customer.sub == bindparam("sub"))


def customer_for(identity: Identity) -> Customer:
    """The customer record for a verified token: the same (setting, sub) on any device is one customer."""

    def get_or_create() -> Customer:
        if identity.auth_setting_id is None:
            customer = db.session.scalar(_VISITOR, {"sub": identity.sub})
        else:
            customer = db.session.scalar(_CUSTOMER, {"auth_setting_id": identity.auth_setting_id, "sub": identity.sub})
        if customer is None:
            customer = Customer(auth_setting_id=identity.auth_setting_id, sub=identity.sub)
            db.session.add(customer)
        if identity.display_name and customer.display_name != identity.display_name:
            customer.display_name = identity.display_name
        if customer.email != identity.email:
            # The site's latest token says where the customer wants email, or (no claim) that they don't.
            customer.email = identity.email
        # A returning customer with nothing new is most hellos (a herd after a restart is all of them):
        # no commit, so nothing loaded so far is expired and read again.
        if db.session.new or db.session.dirty:
            db.session.commit()
        return customer

    return _retry_on_conflict(get_or_create)


def _customer_conversations(customer_id: int, workstream_id: str):
    return select(Conversation).where(
        Conversation.customer_id == customer_id, Conversation.workstream_id == workstream_id
    )


# Built once: constructing a statement costs more than SQLite takes to run it (see bench/lifecycle.py).
_CURRENT = select(Conversation).where(
    Conversation.customer_id == bindparam("customer_id"),
    Conversation.workstream_id == bindparam("workstream_id"),
    IS_CURRENT,
)
_SENT_BEFORE = (
    select(Message.__table__.c.id)
    .join(Conversation.__table__)
    .where(
        Message.client_id == bindparam("client_id"),
        Conversation.customer_id == bindparam("customer_id"),
        Conversation.workstream_id == bindparam("workstream_id"),
    )
)


def current_conversation(customer_id: int, workstream_id: str) -> Conversation | None:
    return db.session.scalar(_CURRENT, {"customer_id": customer_id, "workstream_id": workstream_id})


def customer_conversation(customer_id: int, workstream_id: str, conversation_id: object) -> Conversation:
    """One of the customer's own conversations; anyone else's is indistinguishable from a missing one."""
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise not_found()
    conversation = db.session.scalar(
        _customer_conversations(customer_id, workstream_id).where(Conversation.id == conversation_id)
    )
    if conversation is None:
        raise not_found()
    return conversation


def customer_conversations_query(customer_id: int, workstream_id: str, before: int | None, limit: int):
    query = _customer_conversations(customer_id, workstream_id)
    if before is not None:
        query = query.where(Conversation.id < before)
    return query.order_by(Conversation.id.desc()).limit(limit)


def customer_conversations(customer_id: int, workstream_id: str, before: int | None, limit: int) -> list[Conversation]:
    return list(db.session.scalars(customer_conversations_query(customer_id, workstream_id, before, limit)))


def messages_page_query(conversation_id: int, *, after: int | None = None, before: int | None = None, limit: int = 50):
    """Newest first with `before` (the caller reverses), else oldest first after `after`: either way one
    range scan of the (conversation_id, seq) index, never OFFSET."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        return query.where(Message.seq < before).order_by(Message.seq.desc()).limit(limit)
    return query.where(Message.seq > (after or 0)).order_by(Message.seq).limit(limit)


def messages_page(
    conversation_id: int, *, after: int | None = None, before: int | None = None, limit: int = 50
) -> list[Message]:
    """A page of messages in ascending order, by sequence cursor."""
    rows = db.session.scalars(messages_page_query(conversation_id, after=after, before=before, limit=limit)).all()
    return list(reversed(rows)) if before is not None else list(rows)


# Writing ----------------------------------------------------------------------------------------------


def _sticky_agent_gone(workstream: Workstream, agent: Agent, now: datetime) -> bool:
    """The workstream's fallback: an agent offline this long (or disabled) no longer holds returning customers."""
    if agent.disabled_at is not None:
        return True
    minutes = workstream.fallback_offline_minutes
    return (
        minutes is not None
        and agent.presence == "offline"
        and agent.presence_changed_at <= now - timedelta(minutes=minutes)
    )


def _customer_returns(conversation: Conversation, customer_id: int) -> Agent | None:
    """A message on a waiting conversation reopens it; with affinity it goes straight back to the same
    agent, whatever their capacity and presence. Returns that agent (to be notified), or None when it
    joins the queue instead."""
    now = clock.now()
    lifecycle.change_status(conversation, "open", "customer", customer_id)
    sticky = conversation.agent
    if (
        conversation.workstream.affinity
        and sticky is not None
        and not _sticky_agent_gone(conversation.workstream, sticky, now)
    ):
        lifecycle.change_status(conversation, "active", "system", None)
        lifecycle.announce_agent(sticky)
        return sticky
    conversation.agent_id = None
    conversation.agent = None
    return None


def post_customer_message(
    workstream_id: str,
    customer_id: int,
    client_id: object,
    body: object,
    context: dict | None = None,
    locale: object = None,
    attachment_ids: object = None,
) -> tuple[Message | posting.Posted, bool]:
    """Store a customer's message, starting a conversation when none is current and bringing a waiting
    one back; `context` (the token's context variables) is kept with the conversation for the agent, and
    `locale` (the widget's language) picks the language of the automated messages the customer gets;
    `attachment_ids` are files the customer uploaded (attachments.py) that the message carries.

    Returns the message and whether it is new; a repeated client_id returns the stored one. It takes
    ids, not rows: on the hot path (a message in a current conversation) neither row is needed.
    """
    context_json = json.dumps(context, sort_keys=True) if context else None
    language = automated_messages.language(locale) if automated_messages.validate_locale(locale) else None
    client_id = validate_client_id(client_id)
    text = validate_body(body, may_be_empty=bool(attachment_ids))
    # The caller's reads (the token's customer) are over: counting may wait, and must not hold the
    # write lock meanwhile (see rates.py). A refused send has stored nothing.
    if db.session.registry.has():
        db.session.commit()
    rates.hit("MESSAGES_PER_CUSTOMER", "messages", customer_id)
    if not attachment_ids:
        # The common case, a message to the agent who holds the conversation, costs far less there.
        message = posting.customer_message(workstream_id, customer_id, client_id, text, context_json, language)
        if message is not None:
            return message, True
    conversation_counted = False

    # attempt() answers (message, None) for a repeated client_id, else (message, whether it still
    # waits for an agent), so routing runs only when there is something to route.
    def attempt() -> tuple[Message, bool | None]:
        nonlocal conversation_counted
        # Core, not ORM: nearly every send finds nothing here, and an ORM query costs three times as much.
        existing = (
            db.session.connection()
            .execute(_SENT_BEFORE, {"client_id": client_id, "customer_id": customer_id, "workstream_id": workstream_id})
            .scalar()
        )
        if existing is not None:
            return db.session.get(Message, existing), None
        files = (
            attachments.claimable(attachment_ids, db.session.get(Workstream, workstream_id), customer_id=customer_id)
            if attachment_ids
            else []
        )
        conversation = current_conversation(customer_id, workstream_id)
        returned_to: Agent | None = None
        if conversation is None:
            now = clock.now()
            workstream = db.session.get(Workstream, workstream_id)
            if workstream.mode == "live" and not routing.is_open(workstream, now):
                # Live chat is real time: outside hours nobody can answer, so nothing is started.
                raise ChatError(409, "outside_hours", "The chat is offline right now; try again during opening hours.")
            if not conversation_counted:
                # Counted outside the transaction (see rates.py): end it, count, and start over.
                db.session.rollback()
                rates.hit("CONVERSATIONS_PER_CUSTOMER", "conversations", customer_id)
                conversation_counted = True
                return attempt()
            # With a bot, the bot answers first; the queue gets the conversation when it hands over.
            status = "bot" if bots.usable(workstream) else "open"
            conversation = Conversation(
                workstream_id=workstream_id,
                customer_id=customer_id,
                status=status,
                created_at=now,
                updated_at=now,
                context=context_json,
                locale=language,
            )
            db.session.add(conversation)
            db.session.flush()
            lifecycle.record(conversation, None, status, "customer", customer_id)
            changed = True
        else:
            # Attributes are set only when they change: a dirty object costs a flush on every message.
            changed = context_json is not None and conversation.context != context_json
            if changed:
                conversation.context = context_json
            if language and conversation.locale != language:
                conversation.locale = language
            if conversation.status == "waiting":
                returned_to = _customer_returns(conversation, customer_id)
                changed = True
        if changed:
            # Widgets learn of a new conversation before its first message (docs/protocol.md).
            lifecycle.announce(conversation, console=False)
        message = lifecycle.append_message(conversation, "customer", text, client_id, attachments=files)
        if conversation.status == "bot" and conversation.bot_answer_due_at is None:
            # The bot's time to answer runs from the first message it has not answered.
            seconds = bots.answer_seconds(conversation.workstream)
            conversation.bot_answer_due_at = clock.now() + timedelta(seconds=seconds)
        if changed or conversation.agent_id is None:
            # The console's lists (the queue's previews too) show the state with this message in it.
            lifecycle.announce(conversation, widget=False)
        if returned_to is not None:
            lifecycle.notify(returned_to.id, "returned", conversation)
        waiting_for_agent = conversation.status == "open" and conversation.agent_id is None
        db.session.commit()
        return message, waiting_for_agent

    message, waiting_for_agent = _retry_on_conflict(attempt)
    if waiting_for_agent is None:
        return message, False
    if waiting_for_agent:
        routing.dispatch()
    return message, True


def agent_conversation(conversation_id: int) -> Conversation:
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise not_found()
    return conversation


def _mine(agent: Agent, conversation_id: int, status: str, doing: str) -> Conversation:
    conversation = agent_conversation(conversation_id)
    if conversation.agent_id != agent.id or conversation.status != status:
        raise ChatError(409, "wrong_state", f"Only your {status.replace('_', '-')} conversations can be {doing}.")
    return conversation


def post_agent_message(
    agent: Agent, conversation_id: int, client_id: object, body: object, attachment_ids: object = None
) -> tuple[Message, bool]:
    """`attachment_ids`: files the agent uploaded to this conversation, carried by the reply."""
    client_id = validate_client_id(client_id)
    text = validate_body(body, may_be_empty=bool(attachment_ids))

    def attempt() -> tuple[Message, bool]:
        conversation = agent_conversation(conversation_id)
        existing = db.session.scalar(
            select(Message).where(Message.conversation_id == conversation.id, Message.client_id == client_id)
        )
        if existing is not None:
            return existing, False
        if conversation.agent_id != agent.id or conversation.status != "active":
            raise ChatError(409, "wrong_state", "Only the assigned agent can reply, while the conversation is active.")
        if conversation.offer_expires_at is not None:
            # Answering is accepting.
            routing.accepted(conversation)
        files = attachments.claimable(attachment_ids, conversation.workstream, conversation_id=conversation.id)
        message = lifecycle.append_message(conversation, "agent", text, client_id, agent, attachments=files)
        notifications.reply_posted(conversation)
        db.session.commit()
        return message, True

    return _retry_on_conflict(attempt)


def post_bot_message(conversation_id: int, client_id: object, body: object) -> tuple[Message, bool]:
    """The workstream's bot answers a conversation that is still with it (bots.py), under its name."""
    client_id = validate_client_id(client_id)
    text = validate_body(body)

    def attempt() -> tuple[Message, bool]:
        # Locked: a handover at the same moment either comes after this message or refuses it.
        conversation = db.session.scalar(
            select(Conversation).where(Conversation.id == conversation_id).with_for_update()
        )
        if conversation is None:
            raise not_found()
        existing = db.session.scalar(
            select(Message).where(Message.conversation_id == conversation.id, Message.client_id == client_id)
        )
        if existing is not None:
            return existing, False
        if conversation.status != "bot":
            raise ChatError(409, "wrong_state", "The bot has handed this conversation over; it can no longer answer.")
        name = conversation.workstream.bot_name
        message = lifecycle.append_message(conversation, "bot", text, client_id, sender_name=name)
        conversation.bot_answer_due_at = None
        db.session.commit()
        return message, True

    return _retry_on_conflict(attempt)


def hand_over(conversation_id: int, actor_kind: str) -> Conversation:
    """The bot (or, for a bot that does not answer, the scheduler) passes the conversation to people: it
    joins the queue as a new conversation does, with what the bot and the customer said in it."""
    now = clock.now()
    table = Conversation.__table__
    # Compare-and-set: of a bot's call and the scheduler's at the same moment, one hands over.
    moved = db.session.execute(
        update(table)
        .where(table.c.id == conversation_id, table.c.status == "bot")
        .values(status="open", bot_answer_due_at=None, updated_at=now)
    ).rowcount
    if moved != 1:
        db.session.rollback()
        agent_conversation(conversation_id)
        raise ChatError(409, "wrong_state", "This conversation is not with the bot.")
    conversation = agent_conversation(conversation_id)
    db.session.refresh(conversation)
    lifecycle.record(conversation, "bot", "open", actor_kind, None)
    lifecycle.announce(conversation)
    db.session.commit()
    routing.dispatch()
    return conversation


def end(agent: Agent, conversation_id: int) -> Conversation:
    """The agent ends the conversation: wrap-up, and the customer's next message starts a new one."""
    conversation = agent_conversation(conversation_id)
    if conversation.agent_id != agent.id or conversation.status not in ("active", "waiting"):
        raise ChatError(409, "wrong_state", "Only the assigned agent can end a conversation that is not over.")
    automated_messages.post(conversation, "agent_ended")
    lifecycle.change_status(conversation, "wrap_up", "agent", agent.id)
    conversation.ended_at = clock.now()
    conversation.offer_expires_at = None
    lifecycle.announce(conversation)
    lifecycle.announce_agent(agent)
    db.session.commit()
    routing.dispatch()
    return conversation


def end_by_customer(customer: Customer, workstream: Workstream, conversation_id: object) -> Conversation:
    """In live chat either side may end; a persistent conversation is only ever ended by an agent."""
    if workstream.mode != "live":
        raise ChatError(409, "not_live", "Only an agent ends a persistent conversation.")
    conversation = customer_conversation(customer.id, workstream.id, conversation_id)
    if conversation.status not in ("open", "active", "bot"):
        raise ChatError(409, "wrong_state", "This chat has already ended.")
    agent = conversation.agent
    now = clock.now()
    if agent is None:
        lifecycle.change_status(conversation, "closed", "customer", customer.id)
    else:
        # The agent still gets the workstream's wrap-up.
        lifecycle.change_status(conversation, "wrap_up", "customer", customer.id)
    conversation.ended_at = now
    conversation.offer_expires_at = None
    lifecycle.announce(conversation)
    if agent is not None:
        lifecycle.announce_agent(agent)
    db.session.commit()
    routing.dispatch()
    return conversation


def transcript(conversation: Conversation, you: str = "You") -> str:
    """The conversation as plain text, every message in order, for the customer to keep."""
    lines = [
        f"{conversation.workstream.name}: conversation {conversation.id}",
        f"Started {conversation.created_at:%Y-%m-%d %H:%M:%S} UTC",
        "",
    ]
    after = 0
    while page := messages_page(conversation.id, after=after, limit=500):
        files = attachments.of_messages(page)
        for m in page:
            who = you if m.sender_kind == "customer" else (m.sender_name or "System")
            lines.append(f"[{m.created_at:%Y-%m-%d %H:%M:%S}] {who}: {m.body}".rstrip())
            lines += [f"    attached: {a.name} ({a.size:,} bytes)" for a in files.get(m.id, [])]
        after = page[-1].seq
    if conversation.ended_at:
        lines += ["", f"Ended {conversation.ended_at:%Y-%m-%d %H:%M:%S} UTC"]
    return "\n".join(lines) + "\n"


def close_wrap_up(agent: Agent, conversation_id: int) -> Conversation:
    """The agent is done with the wrap-up: the conversation is closed for good and frees capacity."""
    conversation = _mine(agent, conversation_id, "wrap_up", "closed")
    close(conversation, "agent", agent.id)
    lifecycle.announce_agent(agent)
    db.session.commit()
    routing.dispatch()
    return conversation


def close(conversation: Conversation, actor_kind: str, actor_id: int | None) -> None:
    """Final: a closed conversation is never reopened (in the caller's transaction)."""
    if not conversation.ended:
        # From wrap-up the customer has already seen it end.
        automated_messages.post(conversation, "closed")
    lifecycle.change_status(conversation, "closed", actor_kind, actor_id)
    conversation.ended_at = conversation.ended_at or clock.now()
    conversation.offer_expires_at = None
    lifecycle.announce(conversation)


def park(agent: Agent, conversation_id: int) -> Conversation:
    """The agent's ✖ on a persistent conversation that has gone quiet: it waits for the customer and
    costs no capacity; the agent keeps it (affinity) and can resume it at any time."""
    conversation = _mine(agent, conversation_id, "active", "moved to waiting")
    if conversation.workstream.mode != "persistent":
        raise ChatError(409, "not_persistent", "Only persistent conversations can wait; end a live chat instead.")
    lifecycle.change_status(conversation, "waiting", "agent", agent.id)
    conversation.offer_expires_at = None
    lifecycle.announce(conversation)
    lifecycle.announce_agent(agent)
    db.session.commit()
    routing.dispatch()
    return conversation


def resume(agent: Agent, conversation_id: int) -> Conversation:
    conversation = _mine(agent, conversation_id, "waiting", "resumed")
    lifecycle.change_status(conversation, "active", "agent", agent.id)
    lifecycle.announce(conversation)
    lifecycle.announce_agent(agent)
    db.session.commit()
    return conversation


BACKLOG_MAX_MESSAGES = 500
BACKLOG_RESET_PAGE = 100


def _page_after(conversation: Conversation, after: int) -> list[Message]:
    if after >= conversation.last_seq:
        return []
    return messages_page(conversation.id, after=after, limit=BACKLOG_MAX_MESSAGES)


_HELD_AND_NEWER = (
    select(Conversation)
    .where(
        Conversation.customer_id == bindparam("customer_id"),
        Conversation.workstream_id == bindparam("workstream_id"),
        Conversation.id >= bindparam("conversation_id"),
    )
    .options(joinedload(Conversation.agent))
    .order_by(Conversation.id)
    .limit(BACKLOG_MAX_MESSAGES + 1)
)


# A cursor past a 64-bit integer is no conversation of anyone's (and the drivers refuse the parameter).
_INTEGER_LIMIT = 2**63


def is_cursor(conversation_id: object, after: object) -> bool:
    """Whether a hello holds a cursor worth reading after: a conversation and a seq in it."""
    return (
        isinstance(conversation_id, int)
        and isinstance(after, int)
        and 0 <= after < _INTEGER_LIMIT
        and abs(conversation_id) < _INTEGER_LIMIT
    )


def backlog(
    customer_id: int, workstream_id: str, conversation_id: object, after: object
) -> tuple[bool, list[tuple[Conversation, list[Message], bool]]]:
    """What a (re)connecting widget is missing: (reset, [(conversation, messages, complete)]).

    With a known cursor: every message after it and every newer conversation (reset False). Without
    one, or too far behind, the latest conversation's last page (reset True): the client starts over.
    """
    if is_cursor(conversation_id, after):
        # The held conversation and every newer one in one statement (with their agents, whom the
        # payload names): a widget that missed nothing, most of a herd after a restart, needs no other.
        found = list(
            db.session.scalars(
                _HELD_AND_NEWER,
                {"customer_id": customer_id, "workstream_id": workstream_id, "conversation_id": conversation_id},
            )
        )
        held, newer = (found[0], found[1:]) if found and found[0].id == conversation_id else (None, [])
        if held is not None and after <= held.last_seq:
            missing = held.last_seq - after + sum(c.last_seq for c in newer)
            if missing <= BACKLOG_MAX_MESSAGES:
                entries = [(held, _page_after(held, after), True)]
                entries += [(c, _page_after(c, 0), True) for c in newer]
                return False, entries
    latest = db.session.scalar(_customer_conversations(customer_id, workstream_id).order_by(Conversation.id.desc()))
    if latest is None:
        return True, []
    page = messages_page(latest.id, before=latest.last_seq + 1, limit=BACKLOG_RESET_PAGE)
    return True, [(latest, page, not page or page[0].seq == 1)]
