"""The authentication setting pages: create and edit settings, add and retire keys (pasted or uploaded
PEM), and "test a token": verify a pasted JWT as the widget's hello would, and show why it is refused."""

from datetime import UTC, datetime

import jwt
from flask import request
from sqlalchemy import select

from .. import auth_settings, customer_auth
from ..errors import ChatError, not_found
from ..extensions import db
from ..models import AuthSetting, Workstream
from . import bp, forms
from .pages import admin_page, page

SECTION = "admin.auth_settings"
FIELDS = ["name", "client_function", "issuer", "clock_skew_seconds", "max_lifetime_seconds", "hs256_secret"]
KEY_FIELDS = ["kid", "public_key", "expires_at"]
KEY_ALIASES = {"public_key": ("PEM", "RSA", "P-256", "public key"), "expires_at": ("expires",)}
DATE_CLAIMS = ("iat", "exp", "nbf")


def _find(setting_id: int) -> AuthSetting:
    setting = db.session.get(AuthSetting, setting_id)
    if setting is None:
        raise not_found("authentication setting")
    return setting


def _pem(form_field: str, file_field: str) -> str | None:
    upload = request.files.get(file_field)
    if upload and upload.filename:
        try:
            return upload.read(auth_settings.MAX_PEM_CHARS + 1).decode()
        except UnicodeDecodeError:
            raise forms.FieldError(form_field, "The uploaded file is not a PEM text file.", "invalid_key") from None
    return forms.text(request.form.get(form_field))


def _fields(form) -> dict:
    return {
        "name": form.get("name", ""),
        "client_function": (form.get("client_function") or "").strip(),
        "issuer": forms.text(form.get("issuer")),
        "clock_skew_seconds": forms.integer(form.get("clock_skew_seconds")),
        "max_lifetime_seconds": forms.integer(form.get("max_lifetime_seconds")),
    }


@bp.get("/auth-settings", endpoint="auth_settings")
@admin_page
def list_page():
    return _list_page()


def _list_page(errors: dict | None = None, values: dict | None = None, status: int = 200):
    found = db.session.scalars(select(AuthSetting).order_by(AuthSetting.id))
    defaults = {"client_function": "getChatToken", "clock_skew_seconds": 60, "max_lifetime_seconds": 86400, "kid": "1"}
    return page(
        "auth_settings.html",
        status,
        settings=[auth_settings.describe(s) for s in found],
        values=values or defaults,
        errors=errors or {},
        section=SECTION,
    )


@bp.post("/auth-settings", endpoint="create_auth_setting_page")
@admin_page
def create_page():
    form = request.form
    data = _fields(form)
    secret = None
    try:
        pem = _pem("public_key", "public_key_file")
        if pem:
            data["keys"] = [
                {"kid": form.get("kid", ""), "public_key": pem, "expires_at": forms.text(form.get("expires_at"))}
            ]
        elif form.get("generate_secret"):
            secret = auth_settings.new_secret()
            data["hs256_secret"] = secret
        else:
            raise forms.FieldError(
                "public_key", "Paste or upload the site's public key, or have a shared secret generated."
            )
        setting = auth_settings.create(data.pop("name"), **data)
    except ChatError as error:
        field = forms.error_field(error, FIELDS + KEY_FIELDS, KEY_ALIASES)
        return _list_page({field: error.message}, dict(form), error.status)
    return _setting_page(setting, secret=secret, notice="The authentication setting was created.", status=201)


def _setting_page(
    setting: AuthSetting, errors: dict | None = None, values: dict | None = None, status: int = 200, **context
):
    described = auth_settings.describe(setting)
    used_by = db.session.scalars(
        select(Workstream).where(Workstream.auth_setting_id == setting.id).order_by(Workstream.name)
    )
    return page(
        "auth_setting.html",
        status,
        setting=described,
        values=values or {**described, "issuer": described["issuer"] or ""},
        used_by=list(used_by),
        errors=errors or {},
        section=SECTION,
        **context,
    )


@bp.get("/auth-settings/<int:setting_id>", endpoint="auth_setting")
@admin_page
def setting_page(setting_id: int):
    return _setting_page(_find(setting_id))


@bp.post("/auth-settings/<int:setting_id>", endpoint="save_auth_setting")
@admin_page
def save_setting(setting_id: int):
    setting = _find(setting_id)
    try:
        auth_settings.update(setting, _fields(request.form))
    except ChatError as error:
        field = forms.error_field(error, FIELDS)
        return _setting_page(setting, {field: error.message}, dict(request.form), error.status)
    return _setting_page(setting, notice="Setting saved.")


@bp.post("/auth-settings/<int:setting_id>/keys", endpoint="add_auth_key_page")
@admin_page
def add_key(setting_id: int):
    setting = _find(setting_id)
    form = request.form
    try:
        pem = _pem("public_key", "public_key_file")
        key = auth_settings.add_key(setting, form.get("kid", ""), pem, forms.text(form.get("expires_at")))
    except ChatError as error:
        db.session.rollback()
        field = forms.error_field(error, KEY_FIELDS, KEY_ALIASES)
        return _setting_page(_find(setting_id), {field: error.message}, key_values=dict(form), status=error.status)
    return _setting_page(
        setting, notice=f"Key {key.kid} added. Fingerprint {auth_settings.fingerprint(key.public_key_pem)}."
    )


@bp.post("/auth-settings/<int:setting_id>/keys/<kid>/retire", endpoint="retire_auth_key_page")
@admin_page
def retire_key(setting_id: int, kid: str):
    setting = _find(setting_id)
    auth_settings.retire_key(setting, kid)
    return _setting_page(setting, notice=f"Key {kid} retired: tokens signed with it are refused from now on.")


def _when(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        except (OverflowError, OSError, ValueError):
            return None
    return None


def test_token(setting: AuthSetting, token: str) -> dict:
    """A pasted token checked exactly as a widget's hello checks it, against this setting."""
    token = token.strip()
    # A workstream that only exists here, never stored: verify() reads a workstream's setting.
    probe = Workstream(name="token test", mode="persistent", auth_setting=setting)
    try:
        header = jwt.get_unverified_header(token) if token else {}
        claims = jwt.decode(token, options={"verify_signature": False}) if token else {}
    except (jwt.PyJWTError, RecursionError):
        header, claims = {}, {}
    try:
        identity = customer_auth.verify(probe, token)
        outcome = {"ok": True, "code": None, "message": f"Accepted: customer {identity.sub!r}."}
    except ChatError as error:
        outcome = {"ok": False, "code": error.code, "message": error.message}
    finally:
        if probe in db.session:
            db.session.expunge(probe)
    rows = [{"name": k, "value": v, "when": _when(v) if k in DATE_CLAIMS else None} for k, v in claims.items()]
    return {**outcome, "header": header, "claims": rows}


@bp.post("/auth-settings/<int:setting_id>/test-token", endpoint="test_auth_token")
@admin_page
def test_token_page(setting_id: int):
    setting = _find(setting_id)
    token = request.form.get("token") or ""
    return _setting_page(setting, result=test_token(setting, token), token=token)
