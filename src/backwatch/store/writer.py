"""Group commit: many concurrent writes, one durable transaction.

Each write is an *operation* ``op(conn, unit) -> result`` run inside a transaction together
with whatever else is waiting. The batch commits once (one fsync for many reports) and only
then is each caller answered, so an acknowledged write is durable. If any operation in a
batch fails, the batch is rolled back and its operations are retried one by one, so a bad
request never takes its neighbours down with it.

``SyncWriter`` runs one operation per transaction, for the CLI and tests.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from backwatch.errors import BackwatchError
from backwatch.store.engine import unavailable

log = logging.getLogger("backwatch.writer")
T = TypeVar("T")


class Unit(Protocol):
    """Work deferred to the end of a transaction, shared by its operations."""

    def flush(self, conn: Connection) -> None: ...

    def after_commit(self) -> None: ...


Op = Callable[[Connection, Any], T]
Done = Callable[[Any, BaseException | None], None]


def _wrap_db_error(engine: Engine, exc: BaseException) -> BaseException:
    if isinstance(exc, OperationalError | DBAPIError) and not isinstance(exc, BackwatchError):
        return unavailable(engine.url.render_as_string(hide_password=True), exc)
    return exc


class SyncWriter:
    """One operation, one transaction, in the calling thread."""

    def __init__(self, engine: Engine, unit_factory: Callable[[], Unit]) -> None:
        self.engine = engine
        self.unit_factory = unit_factory

    def run(self, op: Op[T]) -> T:
        unit = self.unit_factory()
        try:
            with self.engine.begin() as conn:
                result = op(conn, unit)
                unit.flush(conn)
        except (OperationalError, DBAPIError) as exc:
            raise _wrap_db_error(self.engine, exc) from None
        unit.after_commit()
        return result

    def close(self) -> None:
        pass


class GroupWriter:
    """A writer thread that batches operations into shared transactions."""

    def __init__(
        self, engine: Engine, unit_factory: Callable[[], Unit], *, max_batch: int = 512
    ) -> None:
        self.engine = engine
        self.unit_factory = unit_factory
        self.max_batch = max_batch
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
            loop.call_soon_threadsafe(_settle, fut, result, exc)

        self._queue.put((op, done))
        return await fut

    def run(self, op: Op[T]) -> T:
        """Blocking variant for threads (file tailers, schedulers)."""
        event = threading.Event()
        box: list[Any] = [None, None]

        def done(result: Any, exc: BaseException | None) -> None:
            box[0], box[1] = result, exc
            event.set()

        self._queue.put((op, done))
        event.wait()
        if box[1] is not None:
            raise box[1]
        return box[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

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

    def _run_batch(self, items: list[tuple[Op[Any], Done]]) -> None:
        unit = self.unit_factory()
        results: list[Any] = []
        try:
            with self.engine.begin() as conn:
                for op, _done in items:
                    results.append(op(conn, unit))
                unit.flush(conn)
        except BaseException as exc:
            if len(items) > 1:
                for item in items:
                    self._run_batch([item])
                return
            if not isinstance(exc, BackwatchError):
                log.warning("write failed: %s", exc)
            items[0][1](None, _wrap_db_error(self.engine, exc))
            return
        self.batches += 1
        self.ops += len(items)
        try:
            unit.after_commit()
        except Exception:  # pragma: no cover - listeners must never lose a committed write
            log.exception("after-commit hook failed")
        for (_op, done), result in zip(items, results, strict=True):
            done(result, None)


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
