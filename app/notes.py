"""Internal notes: what agents write on a conversation for each other.

A note is kept apart from the messages (no seq, its own table) and is emitted only on console channels
(the conversation's watchers and its assigned agent): the widget, its backlog, its history pages and
the transcript read messages only, so a customer cannot come across a note by any route.
"""

from sqlalchemy import select

from . import clock, conversations, events
from .clock import iso
from .extensions import db
from .models import Agent, Note

# Notes are few (a handful per conversation); a conversation's are sent whole, up to this many.
MAX_NOTES = 500


def payload(note: Note) -> dict:
    return {
        "id": note.id,
        "conversation_id": note.conversation_id,
        "agent_id": note.agent_id,
        "author_name": note.author_name,
        "body": note.body,
        "after_seq": note.after_seq,
        "created_at": iso(note.created_at),
    }


def add(agent: Agent, conversation_id: int, body: object) -> Note:
    """Any agent may write a note on any conversation, in any state: a wrap-up note, a hint for a
    colleague who takes it over."""
    text = conversations.validate_body(body)
    conversation = conversations.agent_conversation(conversation_id)
    note = Note(
        conversation_id=conversation.id,
        agent_id=agent.id,
        author_name=agent.name,
        body=text,
        after_seq=conversation.last_seq,
        created_at=clock.now(),
    )
    db.session.add(note)
    db.session.flush()
    channels = [events.conversation_channel(conversation.id)]
    if conversation.agent_id:
        channels.append(events.agent_channel(conversation.agent_id))
    events.emit(db.session, channels, {"type": "note", "note": payload(note)})
    db.session.commit()
    return note


def of(conversation_id: int) -> list[Note]:
    """The conversation's notes, oldest first."""
    rows = db.session.scalars(
        select(Note).where(Note.conversation_id == conversation_id).order_by(Note.id.desc()).limit(MAX_NOTES)
    ).all()
    return list(reversed(rows))
