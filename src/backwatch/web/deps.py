"""Shared request helpers: the hub, JSON bodies and responses, authentication."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from backwatch.errors import InvalidInput, MalformedInput, Unauthorized
from backwatch.services import tokens
from backwatch.services.hub import Hub
from backwatch.timeutil import parse_duration, parse_time

TOKEN_CACHE_SECONDS = 5.0


def hub(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


def json_bytes(data: Any) -> bytes:
    """The API's JSON encoding: compact, UTF-8, anything unusual as its ``str``.

    Total, so a row stored before input was bounded and cleaned never fails a read: a
    lone surrogate is sent as '?', a non-finite number (NaN, Infinity: not JSON) as null."""
    try:
        text = _ENCODER.encode(data)
    except ValueError:  # NaN or Infinity somewhere (e.g. a sum of huge stored figures)
        text = _ENCODER.encode(_finite(data))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json_bytes(data), status_code=status, media_type="application/json")


async def json_body(request: Request) -> Any:
    return parse_json(await request.body())


def parse_json(raw: bytes) -> Any:
    """A request body → JSON value, or MalformedInput naming the problem."""
    if not raw.strip():
        raise MalformedInput("the request body is empty; send a JSON object")
    try:
        # JSON over HTTP is UTF-8 (RFC 8259); json.loads(bytes) would also guess UTF-16/32
        return _DECODER.decode(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise MalformedInput("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MalformedInput(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise MalformedInput(f"malformed JSON: {exc}") from None


def _no_constants(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and no database stores them.
    raise ValueError(f"{name} is not valid JSON (use a number or null)")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


class TokenCache:
    """Token hash → its Grant, re-read after a few seconds so revocations take effect."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tokens.Grant | None, float]] = {}

    def lookup(self, h: Hub, token: str) -> tokens.Grant | None:
        now = time.monotonic()
        hit = self._entries.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        found = tokens.lookup(h.read_engine, token)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[token] = (found, now + TOKEN_CACHE_SECONDS)
        return found

    def clear(self) -> None:
        self._entries.clear()


def authorize(request: Request, needed: str) -> str:
    """The calling token's name, or raise 401/403."""
    return authorize_grant(request, needed).name


def authorize_grant(request: Request, needed: str) -> tokens.Grant:
    """The calling token's Grant (scope and report patterns), or raise 401/403."""
    header = request.headers.get("authorization", "")
    return check_grant(hub(request), request.app.state.token_cache, header, needed)


def check_token(h: Hub, cache: TokenCache, header: str, needed: str) -> str:
    """``authorize`` from the raw ``Authorization`` header (also used off the framework)."""
    return check_grant(h, cache, header, needed).name


def check_grant(h: Hub, cache: TokenCache, header: str, needed: str) -> tokens.Grant:
    """``authorize_grant`` from the raw ``Authorization`` header."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "this call needs a token: send 'Authorization: Bearer <token>' "
            "(the first token is in <data>/token; more with `backwatch token create`)"
        )
    found = cache.lookup(h, token.strip())
    if found is None:
        raise Unauthorized("the token is not valid (unknown or revoked)")
    if not found.allows(needed):
        raise tokens.scope_refusal(found.name, found.scope, needed)
    return found


def authorize_read(request: Request) -> None:
    if hub(request).settings.auth.read == "token":
        authorize(request, "read")


def time_param(value: str | None, field: str, now: float) -> float | None:
    """A query time: ISO 8601, epoch seconds, or a span back from now such as '6h'."""
    if value is None or value == "":
        return None

    try:
        return parse_time(value, field=field)
    except ValueError:
        pass
    try:
        return now - parse_duration(value, field=field)
    except ValueError:
        raise InvalidInput.field(
            field, "must be an ISO 8601 time, epoch seconds or a span such as '6h'"
        ) from None
