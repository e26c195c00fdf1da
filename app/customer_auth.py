"""Verifying customer tokens against a workstream's authentication setting.

The site's backend signs a JWT for its signed-in customer; the server trusts nothing else the browser
says. The algorithm is pinned by the key the token names (or by the shared secret), never taken from
the token's header alone. Every refusal has its own `token_…` code, and nothing is created for it.
"""

import functools
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import jwt
from flask import current_app

from . import checked, clock
from .errors import ChatError
from .mail import validate_email
from .models import AuthKey, AuthSetting, Workstream

MAX_TOKEN_BYTES = 8 * 1024
MAX_SUB_CHARS = 256
MAX_CONTEXT_VARIABLES = 50
MAX_CONTEXT_CHARS = 4096
ASYMMETRIC = ("RS256", "ES256")
VISITOR_KID = "persistent-chat-visitor"
VISITOR_ISSUER = "persistent-chat/visitor"
VISITOR_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the customer is. `authenticated` is False for the anonymous visitors
    of live workstreams (a later issue), who get an identity of another kind."""

    auth_setting_id: int | None
    sub: str
    display_name: str | None
    context: dict = field(default_factory=dict)
    expires_at: int | None = None
    authenticated: bool = True
    # The site's key that verified the token (None for a shared secret): retiring it ends the socket.
    kid: str | None = None
    email: str | None = None


def refuse(code: str, message: str) -> ChatError:
    return ChatError(401, f"token_{code}", message)


def _key_for(setting: AuthSetting, header: dict) -> tuple[object, str, str | None]:
    alg = header.get("alg")
    if alg == "HS256":
        if not setting.hs256_secret:
            raise refuse("alg_not_allowed", "This site signs its tokens with a public key, not a shared secret.")
        return setting.hs256_secret, "HS256", None
    if alg not in ASYMMETRIC:
        raise refuse("alg_not_allowed", f"Tokens signed with {alg!r} are not accepted.")
    kid = header.get("kid")
    live = [k for k in setting.keys if k.retired_at is None]
    if kid is None and len(live) == 1:
        key: AuthKey | None = live[0]
    else:
        key = next((k for k in live if k.kid == kid), None)
    if key is None:
        raise refuse("unknown_kid", f"No current key with kid {kid!r} for this site.")
    if key.expires_at is not None and key.expires_at <= clock.now():
        raise refuse("key_expired", f"The key {key.kid!r} has expired.")
    if key.algorithm != alg:
        raise refuse("alg_not_allowed", f"The key {key.kid!r} signs with {key.algorithm}, not {alg}.")
    return _public_key(key.public_key_pem, key.algorithm), key.algorithm, key.kid


@functools.lru_cache(maxsize=256)
def _public_key(pem: str, algorithm: str) -> object:
    """A site's public key, parsed once: PyJWT would parse the PEM again for every token, most of a
    token check's cost when a herd of widgets reconnects. A PEM that does not parse is left to PyJWT,
    which refuses it as it always has."""
    try:
        return jwt.get_algorithm_by_name(algorithm).prepare_key(pem)
    except (jwt.PyJWTError, ValueError):
        return pem


def _decode(token: str, key: object, algorithm: str, issuer: str | None, leeway: int) -> dict:
    """PyJWT's checks (signature, exp, nbf, iat, iss), each failure mapped to its own code."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat"], "verify_sub": False},
        )
    except jwt.ExpiredSignatureError as e:
        raise refuse("expired", "The token has expired.") from e
    except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError) as e:
        raise refuse("not_yet_valid", "The token is not valid yet (nbf or iat in the future).") from e
    except jwt.InvalidIssuerError as e:
        raise refuse("wrong_issuer", "The token's issuer (iss) is not this site's.") from e
    except jwt.MissingRequiredClaimError as e:
        raise refuse("missing_claim", f"The token has no {e.claim!r} claim.") from e
    except jwt.InvalidSignatureError as e:
        raise refuse("bad_signature", "The token's signature does not verify.") from e
    except jwt.InvalidAlgorithmError as e:
        raise refuse("alg_not_allowed", "The token's algorithm does not match the key.") from e
    except jwt.InvalidKeyError as e:
        raise refuse("alg_not_allowed", "The token cannot be verified with this site's key.") from e
    except jwt.PyJWTError as e:
        raise refuse("malformed", f"The token is malformed: {e}.") from e
    except RecursionError as e:
        raise refuse("malformed", "The token's claims are nested too deeply.") from e


def _context(claims: dict) -> dict:
    raw = claims.get("lwicontexts")
    if raw is None:
        return {}
    if not isinstance(raw, str) or len(raw) > MAX_CONTEXT_CHARS:
        raise refuse("invalid_contexts", "lwicontexts must be a JSON-encoded string of at most 4096 characters.")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise refuse("invalid_contexts", "lwicontexts is not valid JSON.") from e
    if not isinstance(value, dict) or len(value) > MAX_CONTEXT_VARIABLES:
        raise refuse("invalid_contexts", "lwicontexts must encode an object of at most 50 variables.")
    for name, item in value.items():
        if not isinstance(item, str | int | float | bool | None):
            raise refuse("invalid_contexts", f"Context variable {name!r} must be a string, number, boolean or null.")
    return value


def _email(claims: dict) -> str | None:
    """The optional `email` claim: where unread replies are emailed (notifications.py)."""
    if "email" not in claims or claims["email"] is None:
        return None
    email = validate_email(claims["email"])
    if email is None:
        raise refuse("invalid_email", "The email claim must be one address such as ada@example.com.")
    return email


def _visitor_key(workstream: Workstream) -> bytes:
    # One key per workstream, derived from the server's secret: a visitor token opens one live chat only.
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"visitor:{workstream.id}".encode(), hashlib.sha256).digest()


def issue_visitor_token(workstream: Workstream) -> str:
    """A signed token for an anonymous visitor of a live workstream (persistent chat needs signed-in
    customers, whose conversations follow them across devices)."""
    if workstream.mode != "live":
        raise ChatError(409, "not_live", "Persistent chat is for signed-in customers: the site must sign a token.")
    now = int(time.time())
    claims = {
        "sub": f"visitor-{secrets.token_urlsafe(16)}",
        "iat": now,
        "exp": now + VISITOR_SECONDS,
        "iss": VISITOR_ISSUER,
    }
    return jwt.encode(claims, _visitor_key(workstream), algorithm="HS256", headers={"kid": VISITOR_KID})


def _verify_visitor(workstream: Workstream, token: str) -> Identity:
    if workstream.mode != "live":
        raise refuse("not_accepted", "Anonymous visitors can use live chat only.")
    claims = _decode(token, _visitor_key(workstream), "HS256", VISITOR_ISSUER, 0)
    return Identity(None, str(claims.get("sub")), None, {}, int(claims["exp"]), authenticated=False)


def verify(workstream: Workstream, token: object) -> Identity:
    if not isinstance(token, str) or not token:
        raise refuse("missing", "A customer token is required.")
    if len(token.encode()) > MAX_TOKEN_BYTES:
        raise refuse("too_large", "The token is larger than 8 KB.")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, RecursionError) as e:
        raise refuse("malformed", "The token is not a JWT.") from e
    if header.get("kid") == VISITOR_KID:
        return _verify_visitor(workstream, token)
    setting = workstream.auth_setting
    if setting is None:
        raise refuse("not_accepted", "This workstream has no authentication setting.")
    verified_key = _verified_key(setting, token)
    identity = _verified.get(verified_key)
    if identity is not None:
        return identity
    key, algorithm, kid = _key_for(setting, header)
    claims = _decode(token, key, algorithm, setting.issuer or None, setting.clock_skew_seconds)
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise refuse("malformed", "exp and iat must be numeric dates.")
    if exp - iat > setting.max_lifetime_seconds:
        raise refuse("lifetime_too_long", f"Tokens may live at most {setting.max_lifetime_seconds} seconds.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise refuse("missing_sub", "The token needs a non-empty sub: the customer's stable id.")
    if len(sub) > MAX_SUB_CHARS:
        raise refuse("sub_too_long", "The token's sub is longer than 256 characters.")
    name = claims.get("name")
    try:
        checked.clean_text(sub)
        if isinstance(name, str):
            checked.clean_text(name)
    except ChatError as e:
        raise refuse("malformed", "The token's sub and name must be text without NUL or lone surrogates.") from e
    identity = Identity(
        setting.id,
        sub,
        name[:200] if isinstance(name, str) and name.strip() else None,
        _context(claims),
        int(exp),
        kid=kid,
        email=_email(claims),
    )
    key_expires_at = next((k.expires_at for k in setting.keys if kid is not None and k.kid == kid), None)
    _verified.put(verified_key, identity, exp + setting.clock_skew_seconds, key_expires_at, len(token))
    return identity


class _Verified:
    """Tokens this process has verified, by their digest and by everything that verified them (the
    setting and its keys as they stand now), until they run out: a widget back with the token it had
    (the next page, a network that dropped) is not verified again, and a changed setting or key misses.
    The least recently seen go first past `entries`, or past `token_bytes` of the tokens they stand for:
    an identity holds what its token's claims held, and a site may put kilobytes of context in each."""

    def __init__(self, entries: int, token_bytes: int):
        self._lock = threading.Lock()
        self._entries_bound = entries
        self._bytes_bound = token_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple, tuple[Identity, float, datetime | None, int]] = OrderedDict()

    def get(self, key: tuple) -> Identity | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            identity, until, key_expires_at, size = found
            # As PyJWT counts exp (with the setting's leeway) and _key_for a key's expiry.
            if time.time() >= until or (key_expires_at is not None and key_expires_at <= clock.now()):
                del self._entries[key]
                self._bytes -= size
                return None
            self._entries.move_to_end(key)
            return identity

    def put(self, key: tuple, identity: Identity, until: float, key_expires_at: datetime | None, size: int) -> None:
        with self._lock:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self._bytes -= replaced[3]
            self._entries[key] = (identity, until, key_expires_at, size)
            self._bytes += size
            while len(self._entries) > self._entries_bound or self._bytes > self._bytes_bound:
                self._bytes -= self._entries.popitem(last=False)[1][3]

    def __len__(self) -> int:
        return len(self._entries)


# A customer's token is a kilobyte or less: 16 MiB holds the bound's 20,000 of those, or 2,000 of 8 KB.
_verified = _Verified(entries=20_000, token_bytes=16 * 1024 * 1024)


def _verified_key(setting: AuthSetting, token: str) -> tuple:
    keys = tuple((k.kid, k.algorithm, k.public_key_pem, k.expires_at, k.retired_at) for k in setting.keys)
    state = (setting.id, setting.issuer, setting.hs256_secret, setting.clock_skew_seconds, setting.max_lifetime_seconds)
    return state, keys, hashlib.sha256(token.encode()).digest()


def valid_until(identity: Identity, setting: AuthSetting | None) -> float | None:
    """When a token verified earlier (say, at a websocket's hello) runs out, as a Unix time; None never."""
    if identity.expires_at is None:
        return None
    skew = setting.clock_skew_seconds if setting is not None and identity.authenticated else 0
    return identity.expires_at + skew


def expired(deadline: float | None) -> bool:
    # The same clock PyJWT checks exp against.
    return deadline is not None and deadline < time.time()
