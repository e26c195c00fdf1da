"""Sending one email through SMTP_URL: `smtp://user:pass@host:587` (STARTTLS whenever the server offers
it; credentials are never sent without TLS), `smtps://user:pass@host:465` (implicit TLS), or `log://`,
which writes the message to the server's log instead (what `make run` uses, so the demo shows them).

A refusal is a MailError that says whether trying again later may help (4xx answers, lost connections)
or not (5xx answers), with the server's reason for the agent to see.
"""

import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

from flask import current_app

SCHEMES = ("smtp", "smtps", "log")
TIMEOUT_SECONDS = 30


class MailError(Exception):
    def __init__(self, reason: str, permanent: bool):
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent


def check_url(url: str | None) -> str | None:
    """SMTP_URL as read from the environment: refused at start-up when it cannot work."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or (parts.scheme != "log" and not parts.hostname):
        raise ValueError(f"SMTP_URL must look like smtp://user:pass@host:587, smtps://… or log://, not {url!r}")
    return url


def validate_email(value: object) -> str | None:
    """An address as a token's `email` claim may carry it; None when it is not one."""
    if not isinstance(value, str) or not 3 <= len(value) <= 254 or any(c.isspace() or c in '<>,;"' for c in value):
        return None
    name, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    if name or address != value or not local or "." not in domain.strip(".") or domain.startswith("."):
        return None
    return value


def configured() -> bool:
    return bool(current_app.config.get("SMTP_URL"))


def sender() -> str:
    return current_app.config["SMTP_FROM"]


def _refused(error: smtplib.SMTPException) -> MailError:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(error.recipients.values()))
    elif isinstance(error, smtplib.SMTPResponseException):
        code, text = error.smtp_code, error.smtp_error
    else:
        return MailError(f"SMTP: {error}", permanent=False)
    reason = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return MailError(f"SMTP {code}: {reason}", permanent=500 <= code < 600)


def send(message: EmailMessage) -> None:
    url = current_app.config["SMTP_URL"]
    parts = urlsplit(url)
    if parts.scheme == "log":
        sys.stderr.write(f"---- email (SMTP_URL=log://, not sent) ----\n{message.as_string()}\n---- end ----\n")
        sys.stderr.flush()
        return
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else ""
    try:
        if parts.scheme == "smtps":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                parts.hostname, parts.port or 465, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(parts.hostname, parts.port or 587, timeout=TIMEOUT_SECONDS)
        with smtp:
            smtp.ehlo()
            if parts.scheme == "smtp" and smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            elif parts.scheme == "smtp" and user:
                raise MailError("The SMTP server offers no STARTTLS: credentials are not sent in clear.", True)
            if user:
                smtp.login(user, password)
            smtp.send_message(message)
    except smtplib.SMTPException as error:
        raise _refused(error) from error
    except OSError as error:
        raise MailError(f"Could not reach the SMTP server: {error}", permanent=False) from error
