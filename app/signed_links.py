"""The signed links in our emails: the way back to the site's page, and unsubscribe.

Both are HMACs of their fields under the server's SECRET_KEY, one purpose each, so neither can be
forged or turned into the other. The link back expires; an unsubscribe link keeps working.
"""

import base64
import calendar
import hashlib
import hmac
from datetime import datetime

from flask import current_app

from . import clock, conversations
from .errors import ChatError
from .extensions import db
from .models import Conversation, Customer, Workstream

RETURN_LINK_DAYS = 14
FRAGMENT = "persistent-chat="
UNSUBSCRIBE_PATH = "/email/unsubscribe/"


def _signature(purpose: str, text: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"{purpose}:{text}".encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _signed(purpose: str, *fields: object) -> str:
    text = ".".join(str(f) for f in fields)
    return f"{text}.{_signature(purpose, text)}"


def _verified(purpose: str, token: object, count: int) -> list[str] | None:
    if not isinstance(token, str) or len(token) > 200:
        return None
    fields = token.split(".")
    if len(fields) != count + 1:
        return None
    text, signature = ".".join(fields[:-1]), fields[-1]
    # Bytes: compare_digest refuses str with non-ASCII characters, and a link may carry anything.
    if not hmac.compare_digest(signature.encode(), _signature(purpose, text).encode()):
        return None
    return fields[:-1]


def _timestamp(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def return_link(conversation: Conversation) -> str | None:
    """The site's page plus a fragment the widget reads on load; fragments never reach the site's server."""
    base = conversation.workstream.notify_return_url
    if not base:
        return None
    expires = _timestamp(clock.now()) + RETURN_LINK_DAYS * 24 * 3600
    value = _signed("return", conversation.workstream_id, conversation.id, expires)
    return f"{base}{'&' if '#' in base else '#'}{FRAGMENT}{value}"


def open_return_link(customer_id: int, workstream_id: str, link: object) -> int:
    """The conversation a return link opens, for the customer the site has signed in: a link of another
    workstream, forged, expired, or for someone else's conversation opens nothing."""
    fields = _verified("return", link, 3)
    if fields is None or fields[0] != workstream_id or not fields[1].isdigit() or not fields[2].isdigit():
        raise ChatError(400, "invalid_link", "This link is not one of ours.")
    if int(fields[2]) < _timestamp(clock.now()):
        raise ChatError(410, "link_expired", "This link has expired.")
    return conversations.customer_conversation(customer_id, workstream_id, int(fields[1])).id


def unsubscribe_url(customer_id: int, workstream_id: str, lang: str) -> str:
    token = _signed("unsubscribe", customer_id, workstream_id)
    return f"{current_app.config['PUBLIC_URL']}{UNSUBSCRIBE_PATH}{token}?lang={lang}"


def unsubscriber(token: object) -> tuple[Customer, Workstream] | None:
    """Whom an unsubscribe link is about, or None for a link that is not ours."""
    fields = _verified("unsubscribe", token, 2)
    if fields is None or not fields[0].isdigit():
        return None
    customer = db.session.get(Customer, int(fields[0]))
    workstream = db.session.get(Workstream, fields[1])
    return (customer, workstream) if customer is not None and workstream is not None else None


def unsubscribe_target(token: object) -> Workstream | None:
    """The workstream an unsubscribe link is about, or None for a link that is not ours."""
    found = unsubscriber(token)
    return found[1] if found else None
