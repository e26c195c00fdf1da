"""A real SMTP server for the email tests: aiosmtpd on a free 127.0.0.1 port, in a thread, keeping what
it receives. `answer` makes it refuse, as a full mailbox (550) or a busy server (421) does; `tls`
serves STARTTLS or implicit TLS with a certificate of a test CA (`tls_authority` writes it to a file
for SSL_CERT_FILE) and asks for a password."""

import datetime
import email
import email.policy
import ipaddress
import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import free_port

USER, PASSWORD = "chat", "s3cret pass"


def tls_authority(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """(the CA's certificate file, a server context for 127.0.0.1 signed by that CA)."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key, issuer_name, issuer_key, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = certificate("Test CA", ca_key, ca_name, ca_key, ca=True)
    server = certificate("127.0.0.1", server_key, ca_name, ca_key, ca=False)
    ca_file, chain, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key_file)
    return ca_file, context


class SmtpServer:
    def __init__(self, tls: str | None = None, context: ssl.SSLContext | None = None) -> None:
        """`tls`: None (plain, no password), "starttls" (port 587 style) or "implicit" (smtps)."""
        self.port = free_port()
        self.received: list[tuple[list[str], EmailMessage]] = []
        # None accepts; "550 …" or "421 …" refuses each message with that answer.
        self.answer: str | None = None
        self.refused = 0
        self.logins: list[str] = []
        # Set: the server waits in DATA until `release` is set, as a slow server does.
        self.stall = threading.Event()
        self.stalling = threading.Event()
        self.release = threading.Event()
        self._changed = threading.Condition()
        if tls is None:
            self.url = f"smtp://127.0.0.1:{self.port}"
            self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
            return
        scheme = "smtps" if tls == "implicit" else "smtp"
        self.url = f"{scheme}://{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{self.port}"
        # aiosmtpd cannot tell that an implicit-TLS connection is encrypted, so it is told to offer AUTH
        # (the test then checks that the client logged in).
        options = (
            {"ssl_context": context, "auth_require_tls": False}
            if tls == "implicit"
            else {"tls_context": context, "require_starttls": True, "auth_required": True}
        )
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            **options,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.stall.is_set():
            self.stalling.set()
            self.release.wait(30)
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
