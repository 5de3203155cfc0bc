"""``backwatch import``: JSONL files of run records, line by line, bad lines skipped."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from backwatch.errors import BackwatchError

FORMATS = ("auto", "seed001", "native")


def _lines(path: str) -> Iterator[tuple[int, str]]:
    if path == "-":
        yield from enumerate(sys.stdin, 1)
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        yield from enumerate(fh, 1)


def import_jsonl(
    path: str, *, fmt: str, job: str | None, target_factory: Callable[[], Any]
) -> dict[str, Any]:
    from backwatch.cli.common import fail

    if fmt not in FORMATS:
        raise fail(f"--format must be one of: {', '.join(FORMATS)} (got {fmt!r})", 2)
    name = "standard input" if path == "-" else path
    outcome: dict[str, Any] = {"imported": 0, "duplicates": 0, "rejected": 0, "errors": []}
    tgt = target_factory()
    try:
        try:
            for number, line in _lines(path):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    _reject(outcome, name, number, f"not valid JSON ({exc.msg})")
                    continue
                if isinstance(record, dict) and job and "job" not in record:
                    record["job"] = job
                if isinstance(record, dict) and fmt == "seed001" and "status" in record:
                    _reject(outcome, name, number, "not a seed 001 record (has 'status')")
                    continue
                try:
                    ack = tgt.report(record)
                except BackwatchError as exc:
                    if getattr(exc, "code", "") == "unreachable" or exc.status == 503:
                        raise
                    _reject(outcome, name, number, exc.message)
                    continue
                outcome["imported" if ack.get("created") else "duplicates"] += 1
        except OSError as exc:
            raise fail(f"cannot read {name}: {exc.strerror or exc}") from None
        prune = getattr(tgt, "prune", None)
        if prune is not None and outcome["imported"]:
            outcome["pruned"] = prune()
    finally:
        tgt.close()
    return outcome


def _reject(outcome: dict[str, Any], name: str, number: int, reason: str) -> None:
    outcome["rejected"] += 1
    outcome["errors"].append({"line": number, "reason": reason})
    sys.stderr.write(f"{name}:{number}: skipped: {reason}\n")
