"""What other instances commit, on PostgreSQL: every instance hears every change.

Several ``serve`` instances can share one PostgreSQL database behind a load balancer. Each
write transaction that changes something also sends its list of changes with
``pg_notify`` (delivered when, and only if, it commits). Every instance listens on one
connection of its own and hands what others committed to its hub's listeners, as if it
had written it: the leader evaluates the rules of a report that reached a follower within
a second, and the live stream and status files of every instance see every write.

A notification can be lost while the listening connection is down: when it is back,
``on_gap`` is called, and the leader judges every job once (``web/tasks.py``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("backwatch.changefeed")

#: one channel per database and schema: two backwatch installations in one database
#: (different schemas) do not hear each other
CHANNEL_SQL = "'backwatch_' || md5(current_database() || '.' || current_schema())"
#: PostgreSQL refuses payloads of 8,000 bytes or more: changes go in several messages
PAYLOAD_MAX = 7000
RECONNECT_S = 2.0


def announce(conn: Connection, origin: str, changes: list[dict[str, Any]]) -> None:
    """Send ``changes`` to the other instances when this transaction commits."""
    for payload in _payloads(origin, changes):
        conn.execute(text(f"SELECT pg_notify({CHANNEL_SQL}, :payload)"), {"payload": payload})


def _payloads(origin: str, changes: list[dict[str, Any]]) -> list[str]:
    payloads: list[str] = []
    batch: list[str] = []
    size = 0
    for change in changes:
        item = json.dumps(change, separators=(",", ":"), default=str)
        if len(item) > PAYLOAD_MAX - 100:
            continue  # (a change is a few ids: never this long)
        if batch and size + len(item) > PAYLOAD_MAX - 100:
            payloads.append(_payload(origin, batch))
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 1
    if batch:
        payloads.append(_payload(origin, batch))
    return payloads


def _payload(origin: str, items: list[str]) -> str:
    return f'{{"from":{json.dumps(origin)},"changes":[{",".join(items)}]}}'


class ChangeFeed:
    """Listens for other instances' changes and calls ``listeners`` with them (from its
    own thread, as the writer thread calls them for this instance's own writes)."""

    def __init__(
        self,
        engine: Engine,
        origin: str,
        listeners: list[Any],
        on_gap: Callable[[], None] | None = None,
    ) -> None:
        self.engine, self.origin, self.listeners = engine, origin, listeners
        self.on_gap = on_gap  # called when listening again after a gap (changes unheard)
        self._gap = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()  # set while LISTEN is in force

    def start(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return  # one SQLite server: nobody else writes
        self._thread = threading.Thread(target=self._run, name="changefeed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:
                self._gap = True
                self.listening.clear()
                log.warning("not hearing other instances' changes, retrying: %s", exc)
                self._stop.wait(RECONNECT_S)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        driver: Any = raw.driver_connection
        raw.detach()  # its own connection, closed with it, never back in the pool
        try:
            driver.rollback()  # (idle: autocommit can be set only outside a transaction)
            driver.autocommit = True
            channel = driver.execute(f"SELECT {CHANNEL_SQL}").fetchone()[0]
            driver.execute(f'LISTEN "{channel}"')
            self.listening.set()
            if self._gap:
                self._gap = False
                if self.on_gap is not None:
                    self.on_gap()
            while not self._stop.is_set():
                for note in driver.notifies(timeout=1.0):
                    self._heard(note.payload)
        finally:
            self.listening.clear()
            raw.close()

    def _heard(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if message.get("from") == self.origin or not message.get("changes"):
            return  # our own write: the writer thread told the listeners already
        # each change says which instance made it: listeners that report only their own
        # instance's work (the log lines) leave these to the instance that logs them
        changes = [{**change, "from": message["from"]} for change in message["changes"]]
        for listener in list(self.listeners):
            try:
                listener(list(changes))
            except Exception:  # one listener's failure never stops the others
                log.exception("change listener failed")
