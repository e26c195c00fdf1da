"""Work distribution: which agent gets an open conversation.

For now the first available agent takes it; capacity, push/pick and affinity come with issue 4.
"""

from sqlalchemy import select

from .extensions import db
from .models import Agent, Conversation


def choose_agent(conversation: Conversation) -> Agent | None:
    return db.session.scalar(select(Agent).where(Agent.presence == "available").order_by(Agent.id).limit(1))


def queued() -> list[Conversation]:
    """Unassigned open conversations, oldest first."""
    return list(
        db.session.scalars(
            select(Conversation)
            .where(Conversation.status == "open", Conversation.agent_id.is_(None))
            .order_by(Conversation.id)
        )
    )
