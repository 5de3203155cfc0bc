"""One error hierarchy for the whole product.

Every user-facing failure is a ``BackwatchError``. The web layer turns it into the one JSON
error envelope (see ``web/errors.py``); the CLI prints its message and exits non-zero.
"""

from __future__ import annotations

from typing import Any


class BackwatchError(Exception):
    """Base class: a message a user can act on, an HTTP status and a stable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(BackwatchError):
    """The input is well-formed but a field is wrong (422)."""

    status = 422
    code = "invalid"

    @classmethod
    def field(cls, field: str, problem: str) -> InvalidInput:
        return cls(f"{field}: {problem}", details=[{"field": field, "problem": problem}])


class MalformedInput(BackwatchError):
    """The body could not be parsed at all (400)."""

    status = 400
    code = "malformed"


class NotFound(BackwatchError):
    status = 404
    code = "not_found"


class Conflict(BackwatchError):
    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    """A run was asked to move to a state its current state does not allow."""

    code = "illegal_transition"


class Unauthorized(BackwatchError):
    status = 401
    code = "unauthorized"


class Forbidden(BackwatchError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(BackwatchError):
    status = 413
    code = "payload_too_large"


class StoreUnavailable(BackwatchError):
    """The database cannot be reached or is not a backwatch database (503)."""

    status = 503
    code = "store_unavailable"


class ConfigError(BackwatchError):
    """The configuration file or environment is wrong."""

    status = 500
    code = "config_error"
