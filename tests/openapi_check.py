"""Holding answers to app/openapi.yaml: the operation a request reached, and whether the answer's status,
content type and JSON body are the ones documented for it."""

import re
from functools import cache

from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app.openapi import document

BASE = "urn:persistent-chat:openapi"
# The prefixes under which every route is a JSON API (or an attachment) and must be documented.
API_PREFIXES = ("/api/", "/console/api/", "/admin/api/", "/attachments/")
METHODS = ("get", "put", "post", "delete", "patch")


def operations() -> set[tuple[str, str]]:
    """(METHOD, path template) of every documented operation."""
    return {
        (method.upper(), path) for path, item in document()["paths"].items() for method in item if method in METHODS
    }


@cache
def _templates() -> list[tuple[re.Pattern, str]]:
    found = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in document()["paths"]]
    # A literal segment wins over a parameter: fewer parameters first.
    return sorted(found, key=lambda pair: pair[1].count("{"))


def template_of(path: str) -> str | None:
    return next((template for pattern, template in _templates() if pattern.match(path)), None)


@cache
def _registry() -> Registry:
    return Registry().with_resource(BASE, Resource(contents=document(), specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _resolve(node: dict, pointer: str) -> tuple[dict, str]:
    """A `$ref`'d response object and its own location."""
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = document()
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def problems(method: str, path: str, status: int, content_type: str | None, body: object) -> list[str]:
    """What in an answer breaks the document; empty when it conforms, or when no operation is documented
    for the request (a page, or a method the route does not have)."""
    template = template_of(path)
    operation = document()["paths"].get(template, {}).get(method.lower()) if template else None
    if operation is None:
        return []
    where = f"{method} {path} ({template}) answered {status}"
    responses = operation["responses"]
    key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in responses), None)
    if key is None:
        return [f"{where}: status not documented (documented: {', '.join(responses)})"]
    response, pointer = _resolve(responses[key], _pointer("paths", template, method.lower(), "responses", key))
    content = response.get("content")
    if not content:
        return [] if body in (None, b"", "") else [f"{where}: a body where none is documented"]
    media_type = (content_type or "").split(";")[0].strip()
    if media_type not in content:
        if "*/*" in content:
            return []
        return [f"{where}: content type {media_type!r} not documented (documented: {', '.join(content)})"]
    if media_type != "application/json" or "schema" not in content[media_type]:
        return []
    schema = {"$ref": f"{BASE}#{pointer}{_pointer('content', media_type, 'schema')}"}
    validator = Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [
        f"{where}: {'/'.join(map(str, error.absolute_path)) or 'body'}: {error.message}"
        for error in validator.iter_errors(body)
    ]


class CheckedClient(FlaskClient):
    """A test client that fails the test on any answer that breaks the document."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        body = response.get_json(silent=True) if response.is_json else response.get_data()
        found = problems(request.method, request.path, response.status_code, response.content_type, body)
        assert not found, "The answer breaks app/openapi.yaml:\n" + "\n".join(found)
        return response
