"""Bot first, then a person: a workstream's bot answers its new conversations before the queue does.

A bot is a pair the admin names on the workstream: one of its webhooks (the bot hears the customer
through `message.created`) and an API key (it answers and hands over through the server API), under
a name the customer sees. A new conversation then starts as `bot` instead of `open`: nobody is offered
it and the queue does not show it. The bot's handover (conversations.hand_over) makes it `open`, and
routing runs as for any new conversation.

A bot that cannot answer must not strand the customer: the scheduler hands over a conversation whose
customer has waited `answer_seconds` for the bot, whose webhook gave up delivering to it, or whose bot
is gone (switched off, its key revoked, removed from the workstream).
"""

from datetime import datetime

from sqlalchemy import exists, or_, select

from .errors import ChatError
from .extensions import db
from .models import ApiKey, Conversation, OutboxWebhook, Webhook, Workstream

DEFAULT_ANSWER_SECONDS = 60
MIN_ANSWER_SECONDS, MAX_ANSWER_SECONDS = 5, 3600
MAX_NAME_CHARS = 120
# The event the bot hears the customer through: its webhook must keep listening to it.
HEARS = "message.created"
FIELDS = ("name", "webhook_id", "api_key_id", "answer_seconds")


def _invalid(message: str) -> ChatError:
    return ChatError(400, "invalid_workstream", message)


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def apply(workstream: Workstream, value: object) -> None:
    """Set the workstream's bot from `{"name", "webhook_id", "api_key_id", "answer_seconds"}`, or
    remove it with None (in the caller's transaction)."""
    if value is None:
        workstream.bot_name = workstream.bot_webhook_id = workstream.bot_api_key_id = None
        workstream.bot_answer_seconds = None
        return
    if not isinstance(value, dict):
        raise _invalid('bot must be {"name", "webhook_id", "api_key_id", "answer_seconds"} or null.')
    unknown = set(value) - set(FIELDS)
    if unknown:
        raise _invalid(f"Unknown bot fields: {', '.join(sorted(unknown))}.")
    name = value.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_CHARS:
        raise _invalid(f"bot.name must be 1 to {MAX_NAME_CHARS} characters: customers see it.")
    webhook_id = _id(value.get("webhook_id"))
    webhook = db.session.get(Webhook, webhook_id) if webhook_id is not None else None
    if webhook is None or webhook.workstream_id != workstream.id:
        raise _invalid("bot.webhook_id must be one of this workstream's webhooks.")
    if not webhook.wants(HEARS):
        raise _invalid(f"bot.webhook_id: the bot's webhook must listen to {HEARS}, to hear the customer.")
    key_id = _id(value.get("api_key_id"))
    key = db.session.get(ApiKey, key_id) if key_id is not None else None
    if key is None or not key.allows(workstream.id):
        raise _invalid("bot.api_key_id must be an API key for this workstream that is not revoked.")
    seconds = value.get("answer_seconds", DEFAULT_ANSWER_SECONDS)
    if _id(seconds) is None or not MIN_ANSWER_SECONDS <= seconds <= MAX_ANSWER_SECONDS:
        raise _invalid(f"bot.answer_seconds must be an integer from {MIN_ANSWER_SECONDS} to {MAX_ANSWER_SECONDS}.")
    workstream.bot_name = name.strip()
    workstream.bot_webhook_id = webhook.id
    workstream.bot_api_key_id = key.id
    workstream.bot_answer_seconds = seconds


def describe(workstream: Workstream) -> dict | None:
    if workstream.bot_webhook_id is None:
        return None
    return {
        "name": workstream.bot_name,
        "webhook_id": workstream.bot_webhook_id,
        "api_key_id": workstream.bot_api_key_id,
        "answer_seconds": workstream.bot_answer_seconds,
    }


def usable(workstream: Workstream) -> bool:
    """A new conversation goes to the bot only if the bot can hear it and answer it."""
    if workstream.bot_webhook_id is None:
        return False
    webhook = db.session.get(Webhook, workstream.bot_webhook_id)
    key = db.session.get(ApiKey, workstream.bot_api_key_id)
    return webhook.active and key is not None and key.allows(workstream.id)


def is_bot_of(webhook: Webhook) -> bool:
    return db.session.scalar(select(Workstream.id).where(Workstream.bot_webhook_id == webhook.id).limit(1)) is not None


def is_the_bot(workstream: Workstream, key: ApiKey) -> bool:
    return workstream.bot_api_key_id is not None and workstream.bot_api_key_id == key.id


def answer_seconds(workstream: Workstream) -> int:
    return workstream.bot_answer_seconds or DEFAULT_ANSWER_SECONDS


def stranded(now: datetime) -> list[int]:
    """Conversations with a bot that will not answer them: to be handed over."""
    given_up = exists().where(
        OutboxWebhook.webhook_id == Workstream.bot_webhook_id,
        OutboxWebhook.conversation_id == Conversation.id,
        OutboxWebhook.status == "failed",
    )
    return list(
        db.session.scalars(
            select(Conversation.id)
            .join(Workstream, Conversation.workstream_id == Workstream.id)
            .outerjoin(Webhook, Webhook.id == Workstream.bot_webhook_id)
            .outerjoin(ApiKey, ApiKey.id == Workstream.bot_api_key_id)
            .where(
                Conversation.status == "bot",
                or_(
                    Conversation.bot_answer_due_at <= now,
                    Workstream.bot_webhook_id.is_(None),
                    Webhook.active.is_(False),
                    ApiKey.revoked_at.is_not(None),
                    given_up,
                ),
            )
            .order_by(Conversation.id)
        )
    )
