"""The admin JSON API for customers' data: find a customer, export everything of theirs, erase it."""

from flask import Response, jsonify, request
from flask_login import current_user

from .. import privacy
from ..api import int_arg
from . import bp
from .api import admin_only


@bp.get("/api/customers")
@admin_only
def find_customers():
    """?email=… or ?auth_setting_id=…&sub=…"""
    found = privacy.find(int_arg("auth_setting_id", low=1), request.args.get("sub"), request.args.get("email"))
    return jsonify({"customers": [privacy.describe(c) for c in found]})


@bp.get("/api/customers/<int:customer_id>")
@admin_only
def get_customer(customer_id: int):
    return jsonify({"customer": privacy.describe(privacy.get(customer_id))})


@bp.get("/api/customers/<int:customer_id>/export")
@admin_only
def export_customer(customer_id: int):
    archive = privacy.export(privacy.get(customer_id), current_user)
    return Response(
        archive,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.zip"'},
    )


@bp.delete("/api/customers/<int:customer_id>")
@admin_only
def erase_customer(customer_id: int):
    return jsonify({"erased": privacy.erase(privacy.get(customer_id), current_user)})
