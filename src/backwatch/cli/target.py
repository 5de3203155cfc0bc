"""Where a command sends its work: a server over HTTP, or the database directly.

``--url``/``BACKWATCH_URL`` → the server (``BACKWATCH_TOKEN``, ``--token`` or
``<data>/token`` authenticates). Otherwise the database: ``--db`` (a SQLite file or a
database URL) or the one in the data directory. Both answer with the same JSON shapes.

The HTTP path uses only the standard library so ``backwatch push`` starts fast.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from backwatch.errors import BackwatchError, StoreUnavailable

HTTP_TIMEOUT_S = 30


class RemoteError(BackwatchError):
    """An error answered by the server, carried through with its status and message."""

    def __init__(self, status: int, code: str, message: str, details: list | None = None):
        super().__init__(message, details=details)
        self.status = status
        self.code = code


class Unreachable(StoreUnavailable):
    code = "unreachable"


class HttpTarget:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        url = self.url + path
        if query:
            clean = {k: v for k, v in query.items() if v is not None}
            if clean:
                url += "?" + urllib.parse.urlencode(clean)
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                err = json.loads(raw)["error"]
                raise RemoteError(
                    exc.code, err.get("code", "error"), err["message"], err.get("details")
                ) from None
            except (ValueError, KeyError, TypeError):
                raise RemoteError(exc.code, "http_error", f"server answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach the server at {self.url}: {reason}") from None
        return json.loads(raw) if raw else None

    # The operations every command needs, as the API offers them.
    def report(self, obj: Any) -> dict[str, Any]:
        return self.request("POST", "/api/v1/runs", obj)  # type: ignore[no-any-return]

    def start(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/v1/runs/start", obj)  # type: ignore[no-any-return]

    def run_call(self, run_id: str, what: str, obj: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v1/runs/{urllib.parse.quote(run_id, safe='')}/{what}"
        return self.request("POST", path, obj)  # type: ignore[no-any-return]

    def list_runs(self, **query: Any) -> dict[str, Any]:
        return self.request("GET", "/api/v1/runs", query=query)  # type: ignore[no-any-return]

    def get_run(self, run_id: str) -> dict[str, Any]:
        path = f"/api/v1/runs/{urllib.parse.quote(run_id, safe='')}"
        return self.request("GET", path)  # type: ignore[no-any-return]

    def list_jobs(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v1/jobs")["items"]  # type: ignore[no-any-return]

    def get_job(self, job_id: str) -> dict[str, Any]:
        path = f"/api/v1/jobs/{urllib.parse.quote(job_id, safe='')}"
        return self.request("GET", path)  # type: ignore[no-any-return]

    def summary(self, days: int, job: str | None = None) -> dict[str, Any]:
        query = {"days": days, "job": job}
        return self.request("GET", "/api/v1/summary", query=query)  # type: ignore[no-any-return]

    def close(self) -> None:
        pass


def resolve(
    *,
    url: str | None,
    token: str | None,
    db: str | None,
    config: str | None,
    data_dir: str | None = None,
) -> Any:
    """Pick the target for a command from its flags and the environment."""
    url = url or os.environ.get("BACKWATCH_URL")
    if url and not db:
        token = token or os.environ.get("BACKWATCH_TOKEN") or _token_from_data_dir(data_dir)
        return HttpTarget(url, token)
    from backwatch.cli.local import LocalTarget

    return LocalTarget(local_settings(config=config, db=db, data_dir=data_dir))


def local_settings(*, config: str | None, db: str | None, data_dir: str | None) -> Any:
    from backwatch.settings import load_settings

    settings = load_settings(config)
    if data_dir:
        settings.data_dir = Path(data_dir)
    if db:
        settings.database_url = db if "://" in db else f"sqlite:///{Path(db).resolve()}"
    return settings


def _token_from_data_dir(data_dir: str | None) -> str | None:
    base = Path(data_dir or os.environ.get("BACKWATCH_DATA_DIR") or "./data")
    try:
        return (base / "token").read_text().strip() or None
    except OSError:
        return None
