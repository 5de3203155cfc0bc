"""Turning pydantic's errors into backwatch's: every problem names its field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from backwatch.errors import InvalidInput

_TYPE_WORDS = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "dict_type": "must be a JSON object",
    "list_type": "must be a list",
    "missing": "is required",
    "greater_than_equal": "must not be negative",
    "int_from_float": "must be a whole number",
    "string_too_short": "must not be empty",
    "finite_number": "must be a finite number",
    "extra_forbidden": "is not a known field",
}
#: loc parts that name a union branch (tags, or pydantic's type names), not a field
_BRANCHES = {"str", "float", "int", "bool", "list", "object", "list[...]", "dict[...]"}


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "":
            out += '[""]'
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def invalid_from(exc: ValidationError) -> InvalidInput:
    details = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        loc = tuple(p for p in loc if p not in _BRANCHES)
        problem = _TYPE_WORDS.get(err["type"]) or err["msg"].removeprefix("Value error, ")
        ctx = err.get("ctx") or {}
        if err["type"] == "greater_than_equal" and ctx.get("ge") not in (0, None):
            problem = err["msg"]
        elif err["type"] == "less_than_equal":
            problem = f"must be at most {ctx.get('le')}"
        elif err["type"] == "string_too_long":
            problem = f"is too long (at most {ctx.get('max_length')} characters)"
        if "[key]" in loc:  # a bad key of an object, e.g. a phase name
            loc = tuple(p for p in loc if p != "[key]")
            problem = f"name {problem}"
        details.append({"field": field_path(loc), "problem": problem})
    seen = set()
    unique = []
    for d in details:
        key = (d["field"], d["problem"])
        if key not in seen:
            seen.add(key)
            unique.append(d)
    message = "; ".join(f"{d['field']}: {d['problem']}" for d in unique)
    return InvalidInput(message, details=unique)


def validate(model: type[BaseModel], obj: dict[str, Any]) -> Any:
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise invalid_from(exc) from None
