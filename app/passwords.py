"""Agents' passwords: the length rule (NIST SP 800-63B), hashing off the event loop, and checks that
take as long for an unknown email as for a real one."""

import secrets
from collections.abc import Callable
from functools import cache
from typing import TypeVar

import gevent
from gevent import monkey
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import ChatError

MIN_LENGTH = 12
# Long passphrases are welcome; the cap only bounds the work one request can ask of the hash.
MAX_LENGTH = 256

T = TypeVar("T")


def _off_loop(work: Callable[..., T], *args: object) -> T:
    """Run CPU-heavy work in gevent's threadpool when gevent drives the process (the served app): a hash
    takes most of a second, and on the loop itself every other socket and request would wait for it."""
    if monkey.is_module_patched("threading"):
        return gevent.get_hub().threadpool.apply(work, args)
    return work(*args)


def check_rules(password: object) -> str:
    """A new password as given, if it may be used; a 400 saying why not otherwise."""
    if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ChatError(400, "weak_password", f"Passwords must be {MIN_LENGTH} to {MAX_LENGTH} characters long.")
    return password


def generate() -> str:
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    return _off_loop(generate_password_hash, password)


@cache
def _dummy_hash() -> str:
    # Made with the same method and cost as real hashes, so checking against it takes as long.
    return generate_password_hash(secrets.token_urlsafe(16))


def verify(password_hash: str | None, password: object) -> bool:
    """Whether `password` matches; with no hash (no such agent) it is checked against a dummy, so the
    answer takes as long either way and does not tell which emails have accounts."""
    candidate = password if isinstance(password, str) and len(password) <= MAX_LENGTH else ""
    return _off_loop(_check, password_hash, candidate)


def _check(password_hash: str | None, password: str) -> bool:
    matches = check_password_hash(password_hash or _dummy_hash(), password)
    return matches and password_hash is not None
