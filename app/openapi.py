"""The OpenAPI 3.1 document of the HTTP APIs, written by hand in openapi.yaml beside this module and served
as JSON at /api/openapi.json. Tests hold it to the routes and to every answer they receive."""

from functools import cache
from importlib.metadata import version
from pathlib import Path

import yaml
from flask import Blueprint, Response, jsonify

SOURCE = Path(__file__).with_name("openapi.yaml")

bp = Blueprint("openapi", __name__)


@cache
def document() -> dict:
    with SOURCE.open(encoding="utf-8") as f:
        found = yaml.safe_load(f)
    found["info"]["version"] = version("persistent-chat")
    return found


@bp.get("/api/openapi.json")
def openapi_json() -> Response:
    response = jsonify(document())
    # Any tool on any origin may read it: it describes the APIs, not anyone's data.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
