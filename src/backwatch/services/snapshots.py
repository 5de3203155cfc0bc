"""The built-in engine's snapshots over HTTP (docs/api.md): list, read, scan, restore and
verify for a configured ``tool = "builtin"`` job, on one of its destinations.

Every function here blocks (it reads manifests and archives, walks sources): the routes run
them in a thread. A restore is recorded as a ``restore`` event of the job (who, what, where).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)
from sqlalchemy import Connection

from backwatch.engine.manifest import FILE, MANIFEST, SYMLINK, Entry, Manifest, read_manifest
from backwatch.engine.repository import Repository
from backwatch.engine.restore import CONFLICTS
from backwatch.engine.restore import restore as engine_restore
from backwatch.engine.scan import since_latest
from backwatch.engine.verify import parse_sample
from backwatch.engine.verify import verify as engine_verify
from backwatch.errors import BackwatchError, Conflict, InvalidInput, MalformedInput, NotFound
from backwatch.ingest._validation import invalid_from
from backwatch.job_settings import builtin_problem
from backwatch.services.hub import Hub
from backwatch.services.unit import WriteUnit
from backwatch.settings import JobSettings
from backwatch.store import queries
from backwatch.timeutil import iso, parse_time

DEFAULT_ENTRIES = 100
MAX_ENTRIES = 1000

# --- which job, which destination --------------------------------------------------------


def builtin_job(h: Hub, job_id: str) -> JobSettings:
    """The configured ``tool = "builtin"`` job ``job_id``: NotFound for an unknown job,
    Conflict (naming its tool) for any other job."""
    for job in h.settings.jobs:
        if job.id != job_id:
            continue
        problem = builtin_problem(job)
        if problem:
            raise Conflict(problem)
        return job
    with h.read_engine.connect() as conn:
        row = queries.get_job(conn, job_id)  # NotFound when the job is unknown
    raise Conflict(
        f"job {job_id!r} (tool {row.get('tool') or 'none'!r}) is not a tool = 'builtin' job "
        "declared in this server's config file: its snapshots are not known here"
    )


def destination(job: JobSettings, dest: int) -> Repository:
    """The job's destination number ``dest`` (0 is the first)."""
    count = len(job.destinations)
    if not 0 <= dest < count:
        raise InvalidInput.field(
            "dest", f"must be between 0 and {count - 1} (job {job.id!r} has {count})"
        )
    return Repository(job.destinations[dest])


def _where(job: JobSettings, repo: Repository, dest: int) -> dict[str, Any]:
    return {"job": job.id, "destination": str(repo.path), "dest": dest}


def _snapshot(job: JobSettings, repo: Repository, ref: str, as_of: float | None = None) -> Manifest:
    """``ref`` (an id, a unique prefix, ``latest``), or the last one at or before ``as_of``."""
    if not repo.ids():
        raise NotFound(
            f"job {job.id!r} has no snapshot yet in {repo.path} "
            f"(take one: POST /api/v1/jobs/{job.id}/run)"
        )
    return repo.resolve(ref) if as_of is None else repo.as_of(as_of)


# --- list and read ------------------------------------------------------------------------

#: (destination, snapshot id) → (manifest.json's mtime and size, its summary). A committed
#: snapshot never changes, and a big manifest takes a good part of a second to read: a
#: listing reads only the snapshots it has not seen.
_SUMMARIES: dict[tuple[str, str], tuple[tuple[int, int], dict[str, Any]]] = {}
_MAX_SUMMARIES = 10_000


def _summary(repo: Repository, snapshot_id: str) -> dict[str, Any]:
    folder = repo.snapshots_dir / snapshot_id
    try:
        st = os.stat(folder / MANIFEST)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (0, -1)
    key = (str(repo.path), snapshot_id)
    hit = _SUMMARIES.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        summary = read_manifest(folder).summary()  # not repo.manifest: it would keep them all
    except MalformedInput as exc:  # one damaged snapshot does not hide the others
        return {"id": snapshot_id, "problem": exc.message}
    if len(_SUMMARIES) >= _MAX_SUMMARIES:
        _SUMMARIES.clear()
    _SUMMARIES[key] = (stamp, summary)
    return summary


def list_snapshots(h: Hub, job_id: str, dest: int = 0) -> dict[str, Any]:
    """``GET /api/v1/jobs/{id}/snapshots``: the destination's snapshots, newest first."""
    job = builtin_job(h, job_id)
    repo = destination(job, dest)
    items = [_summary(repo, i) for i in reversed(repo.ids())]
    return {**_where(job, repo, dest), "destinations": job.destinations, "items": items}


def snapshot_detail(
    h: Hub,
    job_id: str,
    ref: str,
    *,
    dest: int = 0,
    path: str | None = None,
    limit: int = DEFAULT_ENTRIES,
    cursor: str | None = None,
) -> dict[str, Any]:
    """``GET /api/v1/jobs/{id}/snapshots/{ref}``: one snapshot and a page of its entries
    (in manifest order), those whose path starts with ``path`` when given."""
    if not 1 <= limit <= MAX_ENTRIES:
        raise InvalidInput.field("limit", f"must be between 1 and {MAX_ENTRIES}")
    job = builtin_job(h, job_id)
    repo = destination(job, dest)
    manifest = _snapshot(job, repo, ref)
    prefix = (path or "").lstrip("/")
    entries = [e for e in manifest.entries if e.path.startswith(prefix)]
    start = _decode_cursor(cursor, manifest.id, prefix) if cursor else 0
    page = entries[start : start + limit]
    end = start + len(page)
    return {
        **manifest.summary(),
        **_where(job, repo, dest),  # the job asked about, whatever the manifest says
        "stats": manifest.stats,
        "path": prefix or None,
        "matched": len(entries),
        "entries": [_entry_out(e) for e in page],
        "next_cursor": _encode_cursor(end, manifest.id, prefix) if end < len(entries) else None,
    }


def _entry_out(entry: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": entry.path,
        "type": entry.type,
        "mode": f"{entry.mode:04o}",
        "mtime": iso(entry.mtime),
    }
    if entry.type == FILE:
        out |= {"size": entry.size, "blake3": entry.blake3, "snapshot": entry.snapshot}
    elif entry.type == SYMLINK:
        out["target"] = entry.target
    if entry.uid is not None:
        out |= {"uid": entry.uid, "gid": entry.gid}
    return out


def _encode_cursor(offset: int, snapshot_id: str, prefix: str) -> str:
    raw = f"{offset}|{snapshot_id}|{prefix}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, snapshot_id: str, prefix: str) -> int:
    """The offset a cursor continues at; it belongs to one snapshot and one ``path``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset, of_snapshot, of_prefix = raw.split("|", 2)
        start = int(offset)
    except ValueError:  # UnicodeDecodeError and binascii.Error are ValueErrors
        raise InvalidInput.field("cursor", "is not a cursor returned by this API") from None
    if (of_snapshot, of_prefix) != (snapshot_id, prefix) or start < 0:
        raise InvalidInput.field(
            "cursor", f"belongs to snapshot {of_snapshot} with path {of_prefix!r}, not this one"
        )
    return start


# --- scan ---------------------------------------------------------------------------------


def scan(h: Hub, job_id: str, dest: int = 0) -> dict[str, Any]:
    """``GET /api/v1/jobs/{id}/scan``: files lost, changed or never backed up since the
    latest snapshot (walking its sources, leaving out the job's excludes)."""
    job = builtin_job(h, job_id)
    repo = destination(job, dest)
    latest = _snapshot(job, repo, "latest")
    assert job.builtin is not None  # builtin_job checked it
    found = since_latest(latest, exclude=job.builtin.exclude)
    counts = {kind: len(found[kind]) for kind in ("lost", "changed", "new")}
    return {**_where(job, repo, dest), **found, "counts": counts}


# --- restore, verify ----------------------------------------------------------------------


class RestoreBody(BaseModel):
    """``POST /api/v1/jobs/{id}/restore``."""

    model_config = ConfigDict(extra="forbid")

    snapshot: StrictStr | None = None
    as_of: StrictStr | StrictInt | StrictFloat | None = None
    target: StrictStr
    paths: list[StrictStr] = []
    conflict: StrictStr = "skip"
    dry_run: StrictBool = False


class VerifyBody(BaseModel):
    """``POST /api/v1/jobs/{id}/verify``."""

    model_config = ConfigDict(extra="forbid")

    snapshot: StrictStr = "latest"
    sample: StrictStr | None = None


def _parse(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_from(exc) from None


def parse_restore(body: Any) -> RestoreBody:
    """A restore body, every problem naming its field (422)."""
    req: RestoreBody = _parse(RestoreBody, body)
    if req.snapshot is not None and req.as_of is not None:
        raise InvalidInput.field("as_of", "give snapshot or as_of, not both")
    if req.conflict not in CONFLICTS:
        raise InvalidInput.field("conflict", f"must be one of: {', '.join(CONFLICTS)}")
    for field, path in [("target", req.target)] + [
        (f"paths[{i}]", p) for i, p in enumerate(req.paths)
    ]:
        if not _is_path(path):
            raise InvalidInput.field(field, "must not contain NUL or unpaired surrogates")
    if not os.path.isabs(req.target):
        raise InvalidInput.field(
            "target", f"must be an absolute directory on the server, not {req.target!r}"
        )
    return req


def _is_path(text: str) -> bool:
    """A path the file system can take: no NUL, and encodable as the OS encodes names
    (a file name that is not UTF-8 arrives as surrogate escapes, and is one)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def parse_verify(body: Any) -> VerifyBody:
    req: VerifyBody = _parse(VerifyBody, body)
    parse_sample(req.sample, field="sample")
    return req


def _as_of(value: str | int | float | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value, field="as_of")
    except ValueError as exc:
        raise InvalidInput(str(exc), details=[{"field": "as_of", "problem": str(exc)}]) from None


def _check_target(job: JobSettings, target: Path, dry_run: bool) -> None:
    """Not inside one of the job's destinations, and a directory we may create."""
    real = target.resolve()
    for d in job.destinations:
        if real.is_relative_to(Path(d).expanduser().resolve()):
            raise InvalidInput.field("target", f"is inside the job's destination {d}")
    if dry_run:
        return
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput.field("target", f"cannot create {target}: {exc.strerror}") from None


def restore(h: Hub, job_id: str, req: RestoreBody, *, actor: str, dest: int = 0) -> dict[str, Any]:
    """``POST /api/v1/jobs/{id}/restore``: what ``backwatch restore --json`` prints. A
    restore that writes (not a dry run) is recorded as a ``restore`` event, also when it
    fails."""
    job = builtin_job(h, job_id)
    repo = destination(job, dest)
    manifest = _snapshot(job, repo, req.snapshot or "latest", _as_of(req.as_of))
    by_path = manifest.by_path()
    for p in req.paths:
        if p.strip("/") not in by_path:
            raise InvalidInput.field("paths", f"{p!r} is not in snapshot {manifest.id}")
    target = Path(req.target)
    _check_target(job, target, req.dry_run)
    what = {"snapshot": manifest.id, "destination": str(repo.path), "target": str(target),
            "paths": req.paths, "conflict": req.conflict}  # fmt: skip
    try:
        result: dict[str, Any] = engine_restore(
            repo, manifest, target, paths=req.paths, conflict=req.conflict, dry_run=req.dry_run
        ).as_dict()
    except Exception as exc:
        if not req.dry_run:
            error = exc.message if isinstance(exc, BackwatchError) else repr(exc)
            h.write(_restore_event(job.id, actor, h.now(), "failed", {**what, "error": error}))
        raise
    if not req.dry_run:
        counts = {k: len(result[k]) for k in ("restored", "skipped", "renamed", "problems")}
        state = "incomplete" if result["problems"] else "restored"
        h.write(_restore_event(job.id, actor, h.now(), state, {**what, **counts}))
    return {**result, "destination": str(repo.path)}


def _restore_event(job_id: str, actor: str, now: float, state: str, detail: dict[str, Any]) -> Any:
    def op(_conn: Connection, unit: WriteUnit) -> None:
        unit.event(
            at=now,
            kind="restore",
            entity="job",
            entity_id=job_id,
            job=job_id,
            to_state=state,
            trigger="api",
            actor=actor,
            detail=detail,
        )

    return op


def verify(h: Hub, job_id: str, req: VerifyBody, *, dest: int = 0) -> dict[str, Any]:
    """``POST /api/v1/jobs/{id}/verify``: what ``backwatch verify --json`` prints."""
    job = builtin_job(h, job_id)
    repo = destination(job, dest)
    manifest = _snapshot(job, repo, req.snapshot)
    report = engine_verify(repo, manifest, sample=parse_sample(req.sample, field="sample"))
    return {**report.as_dict(), "destination": str(repo.path)}
