"""Frames relayed between the customer's widgets and the agent's console but never stored: typing
indicators and read markers. They go straight to the hub (no transaction to wait for); a client that is
not connected when one is sent simply never sees it, which is what a typing indicator or a read marker
for tabs that are open at the time needs."""

import json

from . import conversations, events, rates
from .errors import ChatError
from .extensions import db
from .models import Agent


def _publish(channels: list[str], frame: dict) -> None:
    events.hub.publish(channels, json.dumps(frame, separators=(",", ":")))


def _seq(value: object, last_seq: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= last_seq:
        raise ChatError(400, "invalid_request", "seq must be the number of a message in the conversation.")
    return value


def customer_typing(customer_id: int, workstream_id: str) -> None:
    """The customer is typing in their current conversation; before their first message there is none
    and nobody to tell."""
    latest = conversations.customer_conversations(customer_id, workstream_id, before=None, limit=1)
    if not latest or latest[0].ended:
        return
    conversation_id, agent_id = latest[0].id, latest[0].agent_id
    # The read is over before the count, which may wait (see rates.py).
    db.session.commit()
    # Coalesced, over all the customer's tabs and devices: the agent's indicator stays on for seconds,
    # so one relay per interval keeps it on.
    if not rates.allow("TYPING_PER_CUSTOMER", "typing", customer_id):
        return
    channels = [events.conversation_channel(conversation_id)]
    if agent_id:
        channels.append(events.agent_channel(agent_id))
    _publish(channels, {"type": "typing", "conversation_id": conversation_id, "sender": "customer"})


def agent_typing(agent_id: int, conversation_id: object) -> None:
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise ChatError(400, "invalid_request", "conversation_id must be an integer.")
    conversation = conversations.agent_conversation(conversation_id)
    if conversation.agent_id != agent_id or conversation.ended:
        raise ChatError(409, "wrong_state", "Only the agent handling an ongoing conversation can be typing in it.")
    agent = db.session.get(Agent, agent_id)
    _publish(
        [events.customer_channel(conversation.customer_id, conversation.workstream_id)],
        {"type": "typing", "conversation_id": conversation.id, "sender": "agent", "sender_name": agent.name},
    )


def customer_read(customer_id: int, workstream_id: str, conversation_id: object, seq: object) -> None:
    """The customer has seen everything up to this message: their other tabs and devices clear their
    unread counts."""
    conversation = conversations.customer_conversation(customer_id, workstream_id, conversation_id)
    frame = {"type": "read", "conversation_id": conversation.id, "seq": _seq(seq, conversation.last_seq)}
    _publish([events.customer_channel(customer_id, workstream_id)], frame)
