"""Where a command sends its work: a server over HTTP, or the database directly.

``--url``/``BACKWATCH_URL`` → the server (``BACKWATCH_TOKEN``, ``--token`` or
``<data>/token`` authenticates). Otherwise the database: ``--db`` (a SQLite file or a
database URL) or the one in the data directory. Both answer with the same JSON shapes.

The HTTP path uses only the standard library, loaded at the first request; the settings and
the database are loaded only when a command works on the database.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backwatch import spool
from backwatch.errors import BackwatchError, InvalidInput, StoreUnavailable
from backwatch.ids import new_run_id
from backwatch.masking import display_url
from backwatch.spool import token_refused

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
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                f"--url {display_url(url)!r} is not a server URL; use http://HOST:PORT, "
                "e.g. http://127.0.0.1:5001"
            )
        self.url = url.strip().rstrip("/")
        #: the URL as messages show it: a password in it is masked
        self.shown_url = display_url(self.url)
        self.token = token

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        # http.client and email load with urllib.request: a command on the database
        # (backwatch run) never needs them
        import http.client
        import urllib.error
        import urllib.request

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
            raise self._remote_error(exc.code, exc.read(), path) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            reason = display_url(str(reason))
            raise Unreachable(f"cannot reach the server at {self.shown_url}: {reason}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise Unreachable(
                f"{self.shown_url} answered {path} with something that is not JSON; "
                "is --url the address of a backwatch server?"
            ) from None

    def _remote_error(self, status: int, raw: bytes, path: str) -> RemoteError:
        try:
            err = json.loads(raw)["error"]
            message = err["message"]
            if status == 404 and err.get("code") == "not_found" and "no such URL" in message:
                message = (
                    f"{self.shown_url}{path}: {message} (is --url the server's base URL, "
                    "e.g. http://127.0.0.1:5001?)"
                )
            if status in (401, 403):
                message = token_refused(message)
            return RemoteError(status, err.get("code", "error"), message, err.get("details"))
        except (ValueError, KeyError, TypeError):
            return RemoteError(
                status, "http_error", f"{self.shown_url}{path}: the server answered HTTP {status}"
            )

    def write(self, path: str, body: Any, spooled: Any) -> Any:
        """POST a report; when the server cannot take it now (unreachable, 5xx, 429), spool
        it and answer ``spooled`` instead (see backwatch.spool). A refused token is an error.
        Spooled entries are delivered first, so the server sees reports in order."""

        if not spool.enabled():
            return self.request("POST", path, body)
        spool_dir = spool.default_dir()
        problem = None
        if spool.pending(spool_dir):
            done = spool.flush(spool_dir, self.request, wait_s=2.0)
            if done.refused:  # not "unreachable": spooling would hide it for ever
                raise RemoteError(401, "unauthorized", done.refused)
            if done.remaining:
                problem = done.errors[-1] if done.errors else "earlier reports are waiting"
        if problem is None:
            try:
                return self.request("POST", path, body)
            except Unreachable as exc:
                problem = exc.message
            except RemoteError as exc:
                # a refused token (401/403) is the user's to fix now: an error, not spooled
                if exc.status not in spool.RETRY_LATER:
                    raise
                problem = f"the server answered {exc.status}: {exc.message}"
        try:
            spool.write_entry(spool_dir, "POST", path, body)
        except OSError as exc:
            raise Unreachable(f"{problem}; and cannot spool to {spool_dir}: {exc}") from None
        sys.stderr.write(
            f"warning: {problem}\nwarning: spooled in {spool_dir}; "
            "deliver later with `backwatch spool flush` (or any later report)\n"
        )
        return spooled

    # The operations every command needs, as the API offers them. Writes carry client-made
    # run ids so that a spooled or retried report is stored once.
    def report(self, obj: Any) -> dict[str, Any]:
        def with_id(item: Any) -> Any:  # native reports only: seed 001 has its backup_id
            native = isinstance(item, dict) and "status" in item and "backup_id" not in item
            if native and not item.get("id"):
                return {"id": new_run_id(), **item}
            return item

        items = [with_id(i) for i in (obj if isinstance(obj, list) else [obj])]
        acks = [_spooled_ack(i, i.get("status") if isinstance(i, dict) else None) for i in items]
        body, spooled = (items, {"items": acks}) if isinstance(obj, list) else (items[0], acks[0])
        return self.write("/api/v1/runs", body, spooled)  # type: ignore[no-any-return]

    def start(self, obj: dict[str, Any]) -> dict[str, Any]:
        if not obj.get("id"):
            obj = {**obj, "id": new_run_id()}
        spooled = _spooled_ack(obj, obj.get("status") or "running")
        return self.write("/api/v1/runs/start", obj, spooled)  # type: ignore[no-any-return]

    def run_call(self, run_id: str, what: str, obj: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v1/runs/{urllib.parse.quote(run_id, safe='')}/{what}"
        spooled = {"id": run_id, "job": None, "status": obj.get("status"), "spooled": True}
        return self.write(path, obj, spooled)  # type: ignore[no-any-return]

    def list_runs(self, **query: Any) -> dict[str, Any]:
        return self.request("GET", "/api/v1/runs", query=query)  # type: ignore[no-any-return]

    def get_run(self, run_id: str) -> dict[str, Any]:
        path = f"/api/v1/runs/{urllib.parse.quote(run_id, safe='')}"
        return self.request("GET", path)  # type: ignore[no-any-return]

    def list_jobs(self) -> list[dict[str, Any]]:
        """Every job, page after page (the server answers 1,000 at most at a time)."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 1000}
        while True:
            page = self.request("GET", "/api/v1/jobs", query=query)
            items += page["items"]
            if not page.get("next_cursor"):
                return items
            query["cursor"] = page["next_cursor"]

    def job_page(
        self, *, health: tuple[str, ...] = (), counts: bool = False, **query: Any
    ) -> dict[str, Any]:
        """One page of ``GET /api/v1/jobs`` (``items``, ``next_cursor``, ``counts``); the
        query: ``tag host q sort limit cursor`` as the API names them."""
        query |= {"health": ",".join(health) or None, "counts": "true" if counts else None}
        return self.request("GET", "/api/v1/jobs", query=query)  # type: ignore[no-any-return]

    def get_job(self, job_id: str) -> dict[str, Any]:
        path = f"/api/v1/jobs/{urllib.parse.quote(job_id, safe='')}"
        return self.request("GET", path)  # type: ignore[no-any-return]

    def summary(self, days: int, job: str | None = None) -> dict[str, Any]:
        query = {"days": days, "job": job}
        return self.request("GET", "/api/v1/summary", query=query)  # type: ignore[no-any-return]

    def close(self) -> None:
        pass


def _spooled_ack(body: Any, status: Any) -> dict[str, Any]:
    """The answer for a spooled report: what the server will store, marked ``spooled``."""
    body = body if isinstance(body, dict) else {}
    ident = body.get("id") or body.get("backup_id")
    return {"id": ident, "job": body.get("job"), "status": status, "created": False,
            "spooled": True}  # fmt: skip


@dataclass(frozen=True)
class Where:
    """The target options a command was given (``cli.params.targeted``); None: not given,
    the environment or the defaults decide."""

    url: str | None = None
    token: str | None = None
    db: str | None = None
    config: str | None = None
    data_dir: str | None = None

    def settings(self) -> Any:
        """The settings of ``--config``, with ``--data-dir`` and ``--db`` applied."""
        from backwatch.settings import load_settings  # pydantic models: not for push --url

        settings = load_settings(self.config)
        if self.data_dir:
            settings.data_dir = Path(self.data_dir)
        if self.db:
            url = self.db if "://" in self.db else f"sqlite:///{Path(self.db).resolve()}"
            settings.database_url = url
        return settings


#: a command given none of the target options
DEFAULT_TARGET = Where()


def open_target(where: Where, *, read_only: bool = False) -> Any:
    """The server (``--url``) or the database a command works on.

    ``read_only`` commands refuse a SQLite file that does not exist yet instead of
    creating an empty one (a typo in ``--db`` should not look like "no jobs yet").
    """
    url = where.url or os.environ.get("BACKWATCH_URL")
    if url and not where.db:
        token = where.token or os.environ.get("BACKWATCH_TOKEN")
        return HttpTarget(url, token or _token_from_data_dir(where.data_dir))
    from backwatch.cli.local import LocalTarget  # SQLAlchemy and the store: not for --url

    settings = where.settings()
    if read_only:
        _require_existing_sqlite(settings.db_url)
    return LocalTarget(settings)


def resolve(
    *,
    url: str | None,
    token: str | None,
    db: str | None,
    config: str | None,
    data_dir: str | None = None,
    read_only: bool = False,
) -> Any:
    """``open_target`` by keywords (tests and scripts)."""
    where = Where(url=url, token=token, db=db, config=config, data_dir=data_dir)
    return open_target(where, read_only=read_only)


def _require_existing_sqlite(db_url: str) -> None:
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or ":memory:" in db_url:
        return
    path = Path(db_url[len(prefix) :].split("?", 1)[0])
    if not path.exists():
        raise StoreUnavailable(
            f"no database at {path}: check --db or --data-dir, or give --url to ask a "
            "server (a database is created by `backwatch serve`, `push` or `db migrate`)"
        )


def _token_from_data_dir(data_dir: str | None) -> str | None:
    base = Path(data_dir or os.environ.get("BACKWATCH_DATA_DIR") or "./data")
    try:
        return (base / "token").read_text().strip() or None
    except OSError:
        return None
