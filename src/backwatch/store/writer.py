"""Group commit: many concurrent writes, one durable transaction.

Each write is an *operation* ``op(conn, unit) -> result`` run inside a transaction together
with whatever else is waiting. The batch commits once (one fsync for many reports) and only
then is each caller answered, so an acknowledged write is durable. If any operation in a
batch fails, the batch is rolled back and its operations are retried one by one, so a bad
request never takes its neighbours down with it. (Before that, a unit whose rollback dropped
a cache that may have been stale, ``after_rollback() -> True``, gets the batch run once more.)

An operation may also declare a *bulk form*: an attribute ``bulk(conn, unit, ops) ->
results`` taking a list of operations of its kind (the same ``bulk`` function). Consecutive
operations of one kind in a batch then run together (one SELECT and one INSERT for many
reports instead of a few statements each); called directly, an operation runs alone. A
bulk form answers one result per operation, in order; a result wrapped in ``Failed`` is an
error for that caller only, and the bulk form promises it wrote nothing for that operation.

``SyncWriter`` runs one operation per transaction, for the CLI and tests.

Both keep a ``WriteHealth``: writes that failed on the database (a full disk, a lost
connection) since the last one that stored something. The health checks, ``/readyz`` and
the ``store_unavailable`` alert rule read it (services/selfmon.py): a full disk makes every
report fail, and without this the server had no memory of it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from backwatch.errors import BackwatchError, StoreUnavailable
from backwatch.store.connect import unavailable

log = logging.getLogger("backwatch.writer")
T = TypeVar("T")


class Unit(Protocol):
    """Work deferred to the end of a transaction, shared by its operations."""

    def flush(self, conn: Connection) -> None: ...

    def after_commit(self) -> None: ...

    def after_rollback(self, exc: BaseException) -> bool:
        """Called when the transaction failed; True if running it again may succeed."""
        ...


Op = Callable[[Connection, Any], T]
Done = Callable[[Any, BaseException | None], None]
#: ``bulk(conn, unit, ops) -> results``: the batched form some operations declare
Bulk = Callable[[Connection, Any, list[Any]], list[Any]]


class Failed:
    """A bulk form's answer for one operation that failed without writing anything."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class RetryAlone(Exception):
    """Raised by a bulk form to have its batch rolled back and run one operation at a time."""


def run_ops(conn: Connection, unit: Any, ops: list[Op[Any]]) -> list[Any]:
    """Run ``ops`` in order in one transaction; consecutive operations that share a bulk
    form run together through it. Results may be ``Failed``."""
    results: list[Any] = []
    i = 0
    while i < len(ops):
        bulk: Bulk | None = getattr(ops[i], "bulk", None)
        j = i + 1
        if bulk is not None:
            while j < len(ops) and getattr(ops[j], "bulk", None) == bulk:
                j += 1
            group = bulk(conn, unit, ops[i:j])
            if len(group) != j - i:  # pragma: no cover - a programming error in a bulk form
                raise RuntimeError(f"{bulk!r} answered {len(group)} results for {j - i} ops")
            results.extend(group)
        else:
            results.append(ops[i](conn, unit))
        i = j
    return results


#: writing works again after this many commits that stored something with no refusal
#: between, or one and this long without a refusal: on a full disk a write that fits in
#: space already taken may pass between refusals
RECOVERED_AFTER = 3
RECENT_S = 60.0


@dataclass(frozen=True)
class WriteTrouble:
    """Writes the database refused since the last time this was reported (``reported``)."""

    refused: int  # writes that failed
    first_failed_at: float
    last_failed_at: float
    last_error: str  # the database's own words: "database or disk is full"
    #: still failing: how many were refused in the minute up to the latest; 0 once writing
    #: works again (RECOVERED_AFTER)
    failing: int
    recovered_at: float | None  # when writing works again (failing == 0)


class WriteHealth:
    """What recent writes came to. A failure is a write the database refused (not a bad
    request); a success is a commit that stored something, so an empty transaction, which
    commits even on a full disk, proves nothing."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._refused = 0
        self._first_failed_at = 0.0
        self._error = ""
        self._failed_at: deque[float] = deque(maxlen=64)  # the latest refusals
        self._stored_after: float | None = None  # a write stored something after them
        self._stored = 0  # commits that stored something since the latest refusal

    def stored(self) -> None:
        if self._refused and self._stored < RECOVERED_AFTER:
            with self._lock:
                if self._refused:
                    if self._stored_after is None:
                        self._stored_after = self._clock()
                    self._stored += 1

    def failed(self, exc: BaseException) -> None:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        now = self._clock()
        with self._lock:
            if not self._refused:
                self._first_failed_at = now
            self._refused += 1
            self._error = reason[0] if reason else type(exc).__name__
            self._failed_at.append(now)
            self._stored_after = None
            self._stored = 0

    def trouble(self) -> WriteTrouble | None:
        """Refused writes not reported yet, or None."""
        now = self._clock()
        with self._lock:
            if not self._refused:
                return None
            last = self._failed_at[-1]
            still = self._stored < RECOVERED_AFTER and (not self._stored or now - last < RECENT_S)
            burst = sum(1 for at in self._failed_at if at > last - RECENT_S)
            return WriteTrouble(
                self._refused,
                self._first_failed_at,
                last,
                self._error,
                burst if still else 0,
                None if still else self._stored_after,
            )

    def reported(self, seen: WriteTrouble) -> None:
        """``seen`` is on record (an alert): forget it once writes work again, unless more
        were refused since."""
        current = self.trouble()
        with self._lock:
            if current is not None and not current.failing and self._refused == seen.refused:
                self._refused = 0
                self._failed_at.clear()
                self._stored_after = None
                self._stored = 0


def refused_by_database(exc: BaseException) -> bool:
    """A write the database could not take (disk full, I/O error, connection lost), as
    opposed to a request that was wrong (a constraint) or a bug."""
    return isinstance(exc, OperationalError | DBAPIError) and not isinstance(exc, IntegrityError)


def _changes(conn: Connection) -> int | None:
    """SQLite's count of rows changed on this connection; None where there is none."""
    return getattr(conn.connection.dbapi_connection, "total_changes", None)


def _wrap_db_error(engine: Engine, exc: BaseException) -> BaseException:
    if isinstance(exc, OperationalError | DBAPIError) and not isinstance(exc, BackwatchError):
        return unavailable(engine.url.render_as_string(hide_password=True), exc)
    return exc


class SyncWriter:
    """One operation, one transaction, in the calling thread."""

    def __init__(
        self,
        engine: Engine,
        unit_factory: Callable[[], Unit],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.unit_factory = unit_factory
        self.health = WriteHealth(clock)

    def run(self, op: Op[T], *, again: bool = True) -> T:
        unit = self.unit_factory()
        try:
            with self.engine.begin() as conn:
                before = _changes(conn)
                result = op(conn, unit)
                unit.flush(conn)
                wrote = before is None or _changes(conn) != before
        except BaseException as exc:
            if unit.after_rollback(exc) and again:
                return self.run(op, again=False)
            if refused_by_database(exc):
                self.health.failed(exc)
            if isinstance(exc, OperationalError | DBAPIError):
                raise _wrap_db_error(self.engine, exc) from None
            raise
        if wrote:
            self.health.stored()
        unit.after_commit()
        return result

    def close(self) -> None:
        pass


#: how often a thread waiting for the writer looks whether it is still there
WAIT_STEP_S = 0.5


def _step(deadline: float | None) -> float:
    """How long to wait for the writer before looking again."""
    if deadline is None:
        return WAIT_STEP_S
    return min(WAIT_STEP_S, max(0.0, deadline - time.monotonic()))


class GroupWriter:
    """A writer thread that batches operations into shared transactions."""

    def __init__(
        self,
        engine: Engine,
        unit_factory: Callable[[], Unit],
        *,
        max_batch: int = 512,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.unit_factory = unit_factory
        self.max_batch = max_batch
        self.health = WriteHealth(clock)
        self._queue: queue.SimpleQueue[tuple[Op[Any], Done] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="backwatch-writer", daemon=True)
        self._thread.start()
        self.batches = 0
        self.ops = 0

    async def submit(self, op: Op[T]) -> T:
        """Run ``op`` in the next batch; returns once its transaction has committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()

        def done(result: Any, exc: BaseException | None) -> None:
            if loop.is_closed():  # the caller went away (shutdown); the write itself stands
                return
            loop.call_soon_threadsafe(_settle, fut, result, exc)

        self._queue.put((op, done))
        return await fut

    def run(self, op: Op[T], *, timeout: float | None = None) -> T:
        """Blocking variant for threads (file tailers, schedulers). With ``timeout``, a
        writer that has not answered by then raises StoreUnavailable (the operation stays
        queued and runs when the writer gets to it)."""
        event = threading.Event()
        box: list[Any] = [None, None]

        def done(result: Any, exc: BaseException | None) -> None:
            box[0], box[1] = result, exc
            event.set()

        self._queue.put((op, done))
        deadline = None if timeout is None else time.monotonic() + timeout
        while not event.wait(_step(deadline)):
            if not self._thread.is_alive() and not event.is_set():  # closed: nobody answers
                raise StoreUnavailable("the database writer has stopped (the server is stopping)")
            if deadline is not None and time.monotonic() >= deadline:
                raise StoreUnavailable(f"the database writer did not answer within {timeout:g} s")
        if box[1] is not None:
            raise box[1]
        return box[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    @property
    def alive(self) -> bool:
        """The writer thread is running (it ends only on ``close`` or a bug)."""
        return self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            items = [item]
            stop = False
            while len(items) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                items.append(nxt)
            self._run_batch(items)
            if stop:
                return

    def _run_batch(self, items: list[tuple[Op[Any], Done]], *, again: bool = True) -> None:
        unit = self.unit_factory()
        try:
            with self.engine.begin() as conn:
                before = _changes(conn)
                results = run_ops(conn, unit, [op for op, _done in items])
                unit.flush(conn)
                wrote = before is None or _changes(conn) != before
        except BaseException as exc:
            if unit.after_rollback(exc) and again:
                self._run_batch(items, again=False)
                return
            if len(items) > 1:
                for item in items:
                    self._run_batch([item])
                return
            if not isinstance(exc, BackwatchError):
                log.warning("write failed: %s", exc)
            if refused_by_database(exc):
                self.health.failed(exc)
            items[0][1](None, _wrap_db_error(self.engine, exc))
            return
        self.batches += 1
        self.ops += len(items)
        if wrote:
            self.health.stored()
        try:
            unit.after_commit()
        except Exception:  # pragma: no cover - listeners must never lose a committed write
            log.exception("after-commit hook failed")
        for (_op, done), result in zip(items, results, strict=True):
            if isinstance(result, Failed):
                done(None, result.error)
            else:
                done(result, None)


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
