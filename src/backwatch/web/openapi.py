"""The OpenAPI document (``/openapi.json``, ``/docs``) as the server really behaves.

Most routes read their own body (one parser per format, shared with the CLI), so FastAPI
sees no request body, and it knows neither our statuses nor our error envelope. This
module completes what FastAPI generates, in one place:

- **request bodies** of the routes that parse them themselves, from the same pydantic
  models (or the raw text they take);
- **every status** an operation answers: its successes, 401/403 where a token is needed
  (and for reads, which ``[auth] read = "token"`` closes), 404 where a path names a thing,
  409 for lifecycle conflicts, 413 for bodies over the limit, 421 for a foreign ``Host``,
  422 for bad input and 503 when the database cannot be reached or written;
- **the real error envelope** ``{"error": {"code", "message", "details"?}}`` for all of
  them, in place of FastAPI's ``HTTPValidationError``.

schemathesis checks this document against a real server (tests/e2e/test_openapi_fuzz.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from backwatch.ingest.jsonl_record import Seed001In
from backwatch.ingest.lifecycle import FilesIn, FinishIn, PhaseEventIn, StartIn, StatusIn
from backwatch.ingest.native import ReportIn
from backwatch.services.jobs import PUT_FIELDS
from backwatch.services.snapshots import RestoreBody, VerifyBody

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["invalid"]},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
                    },
                },
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_REASONS = {
    400: "The request is malformed",
    401: "No token, or a token that is not valid (or reads need a token: `[auth] read`)",
    403: "The token's scope does not allow this call",
    404: "No such thing (job, run, alert, snapshot, ping key)",
    409: "The call conflicts with the thing's state (a finished run, a resolved alert)",
    413: "The body is over `[server] max_body_bytes`",
    421: "The Host header names a server this is not (`[server] allowed_hosts`)",
    422: "Bad input: the error names the field and the problem",
    503: "The database cannot be reached or written (a full disk, a lock)",
}
#: successes other than a plain 200: (method, path) → {status: description}
_SUCCESSES: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/api/v1/runs"): {201: "Stored", 200: "Already stored (same id or backup_id)"},
    ("post", "/api/v1/runs/start"): {201: "Opened", 200: "Already open (same id)"},
    ("post", "/api/v1/tool-output/{tool}"): {201: "Stored", 200: "Already stored (same id)"},
    ("post", "/api/v1/ingest/duplicati"): {
        201: "Stored",
        200: "Already stored, or not a backup or test (`recorded: false`)",
    },
    ("post", "/api/v1/jobs/{job_id}/run"): {202: "Queued: answers the run id"},
    ("post", "/api/v1/jobs/{job_id}/drill"): {201: "Drilled: answers the drill's run"},
}
#: statuses beyond the defaults: (method, path) → statuses
_EXTRA: dict[tuple[str, str], set[int]] = {
    ("post", "/api/v1/runs/{run_id}/status"): {409},
    ("post", "/api/v1/runs/{run_id}/phases"): {409},
    ("post", "/api/v1/runs/{run_id}/files"): {409},
    ("post", "/api/v1/runs/{run_id}/finish"): {409},
    ("post", "/api/v1/alerts/{alert_id}/ack"): {409},
    ("post", "/api/v1/alerts/{alert_id}/resolve"): {409},
    ("post", "/api/v1/jobs/{job_id}/run"): {404, 409},
    ("post", "/api/v1/jobs/{job_id}/restore"): {409},
    ("post", "/api/v1/jobs/{job_id}/verify"): {409},
    ("post", "/api/v1/notify/test"): {422},
    ("get", "/api/v1/jobs/{job_id}/snapshots"): {409},
    ("get", "/api/v1/jobs/{job_id}/snapshots/{snapshot}"): {409},
    ("get", "/api/v1/jobs/{job_id}/scan"): {409},
}
#: what a 200 carries when it is not JSON
_TEXT_SUCCESS = {
    "/metrics": "text/plain",
    "/api/v1/stream": "text/event-stream",
}
#: open to anyone: no token is ever asked (the ping key is the secret of a ping URL)
_OPEN = ("/health", "/livez", "/readyz", "/ping/")
_TEXT_BODY = {"content": {"text/plain": {"schema": {"type": "string"}}}}


def _body_models() -> dict[tuple[str, str], Any]:
    """(method, path) → the request body: a model, a JSON schema, or raw text."""

    report = {
        "oneOf": [
            {"$ref": "#/components/schemas/ReportIn"},
            {"$ref": "#/components/schemas/Seed001In"},
            {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/ReportIn"},
                        {"$ref": "#/components/schemas/Seed001In"},
                    ]
                },
            },
        ]
    }
    return {
        ("post", "/api/v1/runs"): (report, [ReportIn, Seed001In]),
        ("post", "/api/v1/runs/start"): StartIn,
        ("post", "/api/v1/runs/{run_id}/status"): StatusIn,
        ("post", "/api/v1/runs/{run_id}/phases"): PhaseEventIn,
        ("post", "/api/v1/runs/{run_id}/files"): FilesIn,
        ("post", "/api/v1/runs/{run_id}/finish"): FinishIn,
        ("post", "/api/v1/jobs/{job_id}/restore"): RestoreBody,
        ("post", "/api/v1/jobs/{job_id}/verify"): VerifyBody,
        ("put", "/api/v1/jobs/{job_id}"): (_job_put_schema(), []),
        ("post", "/api/v1/jobs/{job_id}/snooze"): (
            {
                "type": "object",
                "required": ["for"],
                "properties": {"for": {"type": "string", "examples": ["2h", "0"]}},
            },
            [],
        ),
        ("post", "/api/v1/tool-output/{tool}"): "text",
        ("post", "/api/v1/ingest/duplicati"): "text",  # Duplicati's form or JSON body
        ("post", "/ping/{key}"): "text",
        ("post", "/ping/{key}/{part}"): "text",
        ("post", "/ping/{key}/{slug}/{action}"): "text",
    }


def _job_put_schema() -> dict[str, Any]:
    props = {
        "description": {"type": "string"},
        "host": {"type": "string"},
        "backup_path": {"type": "string"},
        "tool": {"type": "string"},
        "schedule": {"type": ["string", "null"], "examples": ["0 2 * * *", "24h"]},
        "timezone": {"type": "string", "examples": ["Europe/Berlin"]},
        "grace": {"type": "string", "examples": ["1h"]},
        "timeout": {"type": ["string", "null"], "examples": ["6h"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "paused": {"type": "boolean"},
    }
    return {
        "type": "object",
        "properties": {k: v for k, v in props.items() if k in PUT_FIELDS},
        "additionalProperties": False,
    }


def _schema_of(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _needs_token(path: str) -> bool:
    return not path.startswith(_OPEN)


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (FastAPI's document) with bodies, statuses and the envelope filled in."""
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    bodies = _body_models()
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            key = (method, path)
            body = bodies.get(key)
            if body == "text":
                op["requestBody"] = {"required": False, **_TEXT_BODY}
            elif isinstance(body, tuple):
                schema, models = body
                for model in models:
                    _schema_of(model, components)
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                }
            elif body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema_of(body, components)}},
                }
            op["responses"] = _responses(method, path, op)
            if path.startswith(HC_PREFIX):
                _healthchecks_operation(method, path, op)
            elif path.startswith("/badge/"):
                op["responses"] = _badge_responses()
    return spec


#: Healthchecks' management API (web/routes/hc_api.py, docs/healthchecks-api.md): its own
#: error shape ``{"error": "..."}`` and its own answers; v1 and v2 are not in the document
HC_PREFIX = "/api/v3/"
_HC_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_HC_SPEC = {
    "type": "object",
    "properties": {
        **{k: {"type": "string"} for k in ("name", "slug", "tags", "desc", "channels")},
        "timeout": {"type": "integer", "minimum": 60, "maximum": 31536000},
        "grace": {"type": "integer", "minimum": 60, "maximum": 31536000},
        "schedule": {"type": "string", "examples": ["0 2 * * *"]},
        "tz": {"type": "string", "examples": ["Europe/Berlin"]},
        "manual_resume": {"type": "boolean"},
        "methods": {"type": "string", "enum": ["", "POST"]},
        "unique": {
            "type": "array",
            "items": {"enum": ["name", "slug", "tags", "timeout", "grace"]},
        },
    },
}


def _healthchecks_operation(method: str, path: str, op: dict[str, Any]) -> None:
    text = path in ("/api/v3/status/", "/api/v3/checks/{code}/pings/{n}/body")
    media = "text/plain" if text else "application/json"
    ok = {
        "description": "OK",
        "content": {media: {"schema": {"type": "string" if text else "object"}}},
    }
    responses: dict[str, Any] = {"200": ok}
    if method == "post" and path == "/api/v3/checks/":
        responses["201"] = {**ok, "description": "Created"}
    if method == "post" and path in ("/api/v3/checks/", "/api/v3/checks/{code}"):
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": _HC_SPEC}},
        }
    errors = {400, 401, 403, 404, 409, 413, 421, 422, 503}
    if path == "/api/v3/status/":
        errors = {421, 503}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _REASONS[status],
            "content": {"application/json": {"schema": _HC_ERROR}},
        }
    op["responses"] = responses


def _badge_responses() -> dict[str, Any]:
    """A badge (web/routes/badges.py): SVG or JSON; 404 text for a wrong key or signature."""
    return {
        "200": {
            "description": "The badge",
            "content": {
                "image/svg+xml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        "404": {
            "description": "No such badge (a wrong key or signature, a reset key, no such job)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **{
            str(status): {
                "description": _REASONS[status],
                "content": {"application/json": {"schema": _ERROR_REF}},
            }
            for status in (421, 503)
        },
    }


def _responses(method: str, path: str, op: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    successes = _SUCCESSES.get((method, path))
    generated = op.get("responses", {})
    if successes is None:
        first = next((c for c in generated if c.startswith("2")), "200")
        responses[first] = generated.get(first, {"description": "OK"})
    else:
        for status, description in successes.items():
            content = generated.get(str(status), {}).get("content")
            responses[str(status)] = {"description": description}
            if content:
                responses[str(status)]["content"] = content
    errors = {421, 503}
    if op.get("parameters") or op.get("requestBody"):
        errors.add(422)
    if op.get("requestBody"):
        errors |= {400, 413}  # 400: a body that is not JSON at all
    if "{" in path:
        errors.add(404)
    if _needs_token(path):
        errors |= {401, 403}
    if path.startswith("/ping/"):
        errors.add(404)
    errors |= _EXTRA.get((method, path), set())
    for status in sorted(errors):
        content: dict[str, Any] = {"application/json": {"schema": _ERROR_REF}}
        if path.startswith("/ping/"):  # Healthchecks' protocol: a ping's answers are text
            content["text/plain"] = {"schema": {"type": "string"}}
        responses[str(status)] = {"description": _REASONS[status], "content": content}
    if path in _TEXT_SUCCESS:
        media = _TEXT_SUCCESS[path]
        responses["200"] = {"description": "OK", "content": {media: {"schema": {"type": "string"}}}}
    if path.startswith("/ping/"):
        responses["200"] = {
            "description": "OK",
            "content": {"text/plain": {"schema": {"type": "string", "examples": ["OK"]}}},
        }
    return responses


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` answer the completed document (built once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
