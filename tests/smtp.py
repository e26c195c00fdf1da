"""A real SMTP server for the email tests: aiosmtpd on a free 127.0.0.1 port, in a thread, keeping what
it receives. `answer` makes it refuse, as a full mailbox (550) or a busy server (421) does."""

import email
import email.policy
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support import free_port


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.received: list[tuple[list[str], EmailMessage]] = []
        # None accepts; "550 …" or "421 …" refuses each message with that answer.
        self.answer: str | None = None
        self.refused = 0
        self._changed = threading.Condition()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._changed:
            if self.answer:
                self.refused += 1
                self._changed.notify_all()
                return self.answer
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.received.append((list(envelope.rcpt_tos), message))
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def start(self) -> "SmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening (once: an aiosmtpd controller cannot start again)."""
        if self._controller.loop.is_running():
            self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        with self._changed:
            return [message for _to, message in self.received]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        """Wait until `count` messages have arrived (polling with a deadline; a loaded machine is slow)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} emails arrived, expected {count}")
                self._changed.wait(left)
            return [message for _to, message in self.received]


def parts(message: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of a multipart/alternative email."""
    return (
        message.get_body(preferencelist=("plain",)).get_content(),
        message.get_body(preferencelist=("html",)).get_content(),
    )
