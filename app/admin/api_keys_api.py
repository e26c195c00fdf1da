"""The admin JSON API for API keys: create (the key is answered once), list, revoke."""

from flask import jsonify
from sqlalchemy import select

from .. import api_keys
from ..api import json_body
from ..extensions import db
from ..models import ApiKey
from . import bp
from .api import admin_only


@bp.get("/api/api-keys")
@admin_only
def list_api_keys():
    found = db.session.scalars(select(ApiKey).order_by(ApiKey.id))
    return jsonify({"api_keys": [api_keys.describe(k) for k in found]})


@bp.post("/api/api-keys")
@admin_only
def create_api_key():
    row, key = api_keys.create(json_body())
    return jsonify({"api_key": {**api_keys.describe(row), "key": key}}), 201


@bp.delete("/api/api-keys/<int:key_id>")
@admin_only
def revoke_api_key(key_id: int):
    return jsonify({"api_key": api_keys.describe(api_keys.revoke(api_keys.get(key_id)))})
