"""Agents: the people answering in the console."""

import secrets

from .extensions import db
from .models import Agent


def add_agent(email: str, name: str, role: str, password: str | None) -> tuple[Agent, str]:
    """Create an agent; returns it with its password (generated when not given)."""
    password = password or secrets.token_urlsafe(12)
    agent = Agent(email=email.strip().lower(), name=name, role=role)
    agent.set_password(password)
    db.session.add(agent)
    db.session.commit()
    return agent, password
