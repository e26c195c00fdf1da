"""Managing authentication settings and their keys: one set of rules for the CLI and the admin API."""

import re
import secrets
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from . import clock, events
from .errors import ChatError
from .extensions import db
from .models import AuthKey, AuthSetting

FUNCTION_NAME = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")
MIN_RSA_BITS = 2048
MIN_EXPIRY_YEAR, MAX_EXPIRY_YEAR = 2000, 9998
MAX_PEM_CHARS = 16 * 1024


def _invalid(message: str) -> ChatError:
    return ChatError(400, "invalid_setting", message)


def create(
    name: object,
    *,
    client_function: object = "getChatToken",
    issuer: object = None,
    hs256_secret: object = None,
    clock_skew_seconds: object = 60,
    max_lifetime_seconds: object = 24 * 3600,
    keys: object = (),
) -> AuthSetting:
    """Create a setting with its keys ({kid, public_key, expires_at}) in one transaction: all or nothing."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 120:
        raise _invalid("name must be 1 to 120 characters.")
    if not isinstance(client_function, str) or len(client_function) > 200 or not FUNCTION_NAME.match(client_function):
        raise _invalid("client_function must be a JavaScript name such as auth.getAuthenticationToken.")
    if issuer is not None and (not isinstance(issuer, str) or not 1 <= len(issuer) <= 500):
        raise _invalid("issuer must be a string of at most 500 characters.")
    if hs256_secret is not None and (not isinstance(hs256_secret, str) or not 32 <= len(hs256_secret) <= 200):
        raise _invalid("hs256_secret must be 32 to 200 characters.")
    for field, value, low, high in (
        ("clock_skew_seconds", clock_skew_seconds, 0, 600),
        ("max_lifetime_seconds", max_lifetime_seconds, 60, 7 * 24 * 3600),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _invalid(f"{field} must be an integer from {low} to {high}.")
    if not isinstance(keys, list | tuple) or not all(isinstance(k, dict) for k in keys):
        raise _invalid("keys must be a list of {kid, public_key, expires_at}.")
    setting = AuthSetting(
        name=name.strip(),
        client_function=client_function,
        issuer=issuer,
        hs256_secret=hs256_secret,
        clock_skew_seconds=clock_skew_seconds,
        max_lifetime_seconds=max_lifetime_seconds,
    )
    # The setting joins the session only once every key has passed: a refusal leaves nothing behind.
    for key in keys:
        _new_key(setting, key.get("kid"), key.get("public_key"), key.get("expires_at"))
    if not setting.keys and not hs256_secret:
        raise _invalid("Give the site's public keys, or an hs256_secret.")
    db.session.add(setting)
    db.session.commit()
    return setting


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def algorithm_for(pem: object) -> str:
    """RS256 for an RSA key of 2048 bits or more, ES256 for a P-256 key; anything else is refused."""
    if not isinstance(pem, str) or len(pem) > MAX_PEM_CHARS or "PUBLIC KEY" not in pem:
        raise ChatError(400, "invalid_key", "public_key must be a PEM-encoded public key of at most 16 KiB.")
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnicodeError) as e:
        raise ChatError(400, "invalid_key", "public_key is not a readable PEM public key.") from e
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ChatError(400, "invalid_key", f"RSA keys must have at least {MIN_RSA_BITS} bits.")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ChatError(400, "invalid_key", "Only RSA (RS256) and P-256 (ES256) public keys are accepted.")


def parse_expiry(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) and len(value) <= 64 else None
        # Converting to UTC overflows for the first and last hours of the calendar (year 1 at +01:00).
        parsed = parsed.astimezone(UTC).replace(tzinfo=None) if parsed and parsed.tzinfo else parsed
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None or not MIN_EXPIRY_YEAR <= parsed.year <= MAX_EXPIRY_YEAR:
        raise ChatError(
            400,
            "invalid_key",
            f"expires_at must be an ISO 8601 date or time, such as 2027-01-31, in the years {MIN_EXPIRY_YEAR}"
            f" to {MAX_EXPIRY_YEAR}.",
        )
    return parsed


def _new_key(setting: AuthSetting, kid: object, public_key: object, expires_at: object) -> AuthKey:
    if not isinstance(kid, str) or not 1 <= len(kid) <= 128:
        raise ChatError(400, "invalid_key", "kid must be 1 to 128 characters.")
    algorithm = algorithm_for(public_key)
    expiry = parse_expiry(expires_at)
    if any(k.kid == kid for k in setting.keys):
        raise ChatError(409, "duplicate_kid", f"This setting already has a key with kid {kid!r}.")
    key = AuthKey(kid=kid, algorithm=algorithm, public_key_pem=public_key, expires_at=expiry)
    setting.keys.append(key)
    return key


def add_key(setting: AuthSetting, kid: object, public_key: object, expires_at: object = None) -> AuthKey:
    key = _new_key(setting, kid, public_key, expires_at)
    db.session.commit()
    return key


def retire_key(setting: AuthSetting, kid: str) -> AuthKey:
    key = next((k for k in setting.keys if k.kid == kid and k.retired_at is None), None)
    if key is None:
        raise ChatError(404, "not_found", f"No current key with kid {kid!r}.")
    key.retired_at = clock.now()
    # Sockets already open with a token of this key end (in every process); reconnecting, they are refused.
    events.emit(
        db.session,
        [events.auth_key_channel(setting.id, key.kid)],
        {"type": "error", "code": "token_key_retired", "message": "The key that signed this token was retired."},
    )
    db.session.commit()
    return key


def describe(setting: AuthSetting) -> dict:
    return {
        "id": setting.id,
        "name": setting.name,
        "client_function": setting.client_function,
        "issuer": setting.issuer,
        "hs256": setting.hs256_secret is not None,
        "clock_skew_seconds": setting.clock_skew_seconds,
        "max_lifetime_seconds": setting.max_lifetime_seconds,
        "keys": [
            {
                "kid": k.kid,
                "algorithm": k.algorithm,
                "expires_at": clock.iso(k.expires_at),
                "retired_at": clock.iso(k.retired_at),
                "created_at": clock.iso(k.created_at),
            }
            for k in setting.keys
        ],
    }
