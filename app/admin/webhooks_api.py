"""The admin JSON API for webhooks: registration per workstream, recent deliveries, redelivery."""

from flask import jsonify

from .. import webhooks
from ..api import json_body
from ..errors import not_found
from ..extensions import db
from ..models import Webhook, Workstream
from . import bp
from .api import admin_only


@bp.get("/api/workstreams/<workstream_id>/webhooks")
@admin_only
def list_webhooks(workstream_id: str):
    if db.session.get(Workstream, workstream_id) is None:
        raise not_found("workstream")
    found = db.session.scalars(db.select(Webhook).where(Webhook.workstream_id == workstream_id).order_by(Webhook.id))
    return jsonify({"webhooks": [webhooks.describe(w) for w in found]})


@bp.post("/api/workstreams/<workstream_id>/webhooks")
@admin_only
def create_webhook(workstream_id: str):
    webhook = webhooks.create(workstream_id, json_body())
    return jsonify({"webhook": webhooks.describe(webhook, secret=True)}), 201


@bp.get("/api/webhooks/<int:webhook_id>")
@admin_only
def get_webhook(webhook_id: int):
    return jsonify({"webhook": webhooks.describe(webhooks.get(webhook_id))})


@bp.patch("/api/webhooks/<int:webhook_id>")
@admin_only
def update_webhook(webhook_id: int):
    return jsonify({"webhook": webhooks.describe(webhooks.update(webhooks.get(webhook_id), json_body()))})


@bp.delete("/api/webhooks/<int:webhook_id>")
@admin_only
def delete_webhook(webhook_id: int):
    webhooks.remove(webhooks.get(webhook_id))
    return "", 204


@bp.get("/api/webhooks/<int:webhook_id>/deliveries")
@admin_only
def list_deliveries(webhook_id: int):
    found = webhooks.recent_deliveries(webhooks.get(webhook_id))
    return jsonify({"deliveries": [webhooks.describe_delivery(d) for d in found]})


@bp.post("/api/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
@admin_only
def redeliver(webhook_id: int, delivery_id: int):
    row = webhooks.redeliver(webhooks.get(webhook_id), delivery_id)
    return jsonify({"delivery": webhooks.describe_delivery(row)}), 201
