"""Verifying customer tokens against a workstream's authentication setting.

The site signs a JWT for its signed-in customer; the server trusts nothing else the browser says.
"""

from dataclasses import dataclass

import jwt

from .errors import ChatError
from .models import AuthSetting, Workstream

MAX_TOKEN_BYTES = 8 * 1024
MAX_SUB_CHARS = 256


@dataclass(frozen=True)
class Identity:
    auth_setting_id: int
    sub: str
    display_name: str | None


def _refuse(code: str, message: str) -> ChatError:
    return ChatError(401, code, message)


def verify(workstream: Workstream, token: object) -> Identity:
    setting: AuthSetting | None = workstream.auth_setting
    if setting is None or not setting.hs256_secret:
        raise ChatError(403, "invalid_token", "This workstream has no authentication setting.")
    if not isinstance(token, str) or not token:
        raise _refuse("invalid_token", "A customer token is required.")
    if len(token.encode()) > MAX_TOKEN_BYTES:
        raise _refuse("invalid_token", "The token is larger than 8 KB.")
    try:
        claims = jwt.decode(
            token,
            setting.hs256_secret,
            algorithms=["HS256"],
            issuer=setting.issuer or None,
            leeway=setting.clock_skew_seconds,
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError as e:
        raise _refuse("token_expired", "The customer token has expired.") from e
    except jwt.PyJWTError as e:
        raise _refuse("invalid_token", f"The customer token was refused: {e}.") from e
    if claims["exp"] - claims["iat"] > setting.max_lifetime_seconds:
        raise _refuse("invalid_token", "The token's lifetime is longer than this site allows.")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB_CHARS:
        raise _refuse("invalid_token", "The token's sub must be a non-empty string of at most 256 characters.")
    name = claims.get("name")
    return Identity(setting.id, sub, name[:200] if isinstance(name, str) and name.strip() else None)
