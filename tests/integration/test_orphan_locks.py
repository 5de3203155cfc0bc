"""A runner that died mid-run (issue 18): whoever takes its lock next learns it, closes its
run, and never runs beside a command it left running on this host. Real lock files, the
real PostgreSQL (advisory locks and their notes in ``lock_holders``), real processes."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select

from backwatch.services.advisory_locks import AdvisoryLocks
from backwatch.services.locks import Busy, Holder, Locks
from backwatch.services.orphans import RUN_ENV
from backwatch.services.stale_locks import died_message
from backwatch.store import tables as t
from backwatch.store.migrate import migrate

JOB = ["job:nightly"]


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    migrate(engine)
    yield engine
    engine.dispose()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def left_running(run_id: str) -> subprocess.Popen[bytes]:
    """A command of run ``run_id`` whose runner is gone (its own session, as runs have)."""
    env = {**os.environ, RUN_ENV: run_id}
    return subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)


def leave_note(engine: Engine, run_id: str, **fields: object) -> None:
    """What a runner killed with -9 leaves in the database: its note, no lock."""
    lock = AdvisoryLocks(engine)
    assert lock.try_acquire(JOB)
    note = {"job": "nightly", "run_id": run_id, "host": "this", "pid": 1, "since": 1.0}
    lock.write_note({**note, **fields})
    lock.note = None  # so release() leaves the note: as if the process died
    lock.release()


def notes(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t.lock_holders)).mappings()]


def test_a_runner_of_another_host_that_died_is_reported_and_its_lock_taken(
    tmp_path: Path, engine: Engine
) -> None:
    leave_note(engine, "run-elsewhere", host="backup-host-2", pid=4242)
    stale: list[Holder] = []
    locks = Locks(tmp_path, engine=engine, on_stale=stale.append)
    held = locks.acquire(JOB, note={"job": "nightly", "run_id": "run-new"})
    assert held is not None  # not waiting: a process there cannot be seen from here
    assert notes(engine)[0]["run_id"] == "run-new"
    held.release()
    assert notes(engine) == []  # a lock given back leaves no note
    [holder] = stale
    assert (holder.run_id, holder.host, holder.pid) == ("run-elsewhere", "backup-host-2", 4242)
    message = died_message(holder)
    assert "backup-host-2" in message and "may still be running there" in message


def test_a_command_left_running_on_this_host_is_waited_for(tmp_path: Path, engine: Engine) -> None:
    locks = Locks(tmp_path, engine=engine)
    leave_note(engine, "run-dead", host=locks.host, pid=dead_pid(), since=time.time())
    orphan = left_running("run-dead")
    stale: list[Holder] = []
    locks.on_stale = stale.append
    try:
        with pytest.raises(Busy) as refused:  # on_busy = "refuse": said, not waited
            locks.acquire(JOB, note={"job": "nightly", "run_id": "r2"}, refuse=set(JOB))
        assert f"pid {orphan.pid}" in refused.value.message
        assert "left running when its runner" in refused.value.message
        got: list[object] = []
        waiting = threading.Thread(
            target=lambda: got.append(locks.acquire(JOB, note={"job": "nightly", "run_id": "r2"}))
        )
        waiting.start()
        waiting.join(1.5)
        assert waiting.is_alive() and got == []  # never beside the orphaned command
    finally:
        orphan.kill()
        orphan.wait()
    waiting.join(10)
    [held] = got
    assert held is not None
    assert notes(engine)[0]["run_id"] == "r2"
    held.release()  # type: ignore[attr-defined]
    [holder] = stale  # reported once, however often it was found
    assert holder.left_running == [orphan.pid]
    assert "left running" in died_message(holder) and "waits for it" in died_message(holder)


def test_a_command_left_running_past_its_timeout_is_stopped(tmp_path: Path, engine: Engine) -> None:
    locks = Locks(tmp_path, engine=engine)
    past = time.time() - 60
    leave_note(engine, "run-late", host=locks.host, pid=dead_pid(), since=past, deadline=past)
    orphan = left_running("run-late")
    try:
        held = locks.acquire(JOB, note={"job": "nightly", "run_id": "r3"})
        assert held is not None
        held.release()
        assert orphan.wait(timeout=10) != 0  # SIGTERM, as its runner's timeout would have
    finally:
        orphan.kill()
        orphan.wait()


def test_a_live_runner_that_lost_its_session_is_not_taken_for_dead(
    tmp_path: Path, engine: Engine
) -> None:
    locks = Locks(tmp_path, engine=engine)
    alive = subprocess.Popen(["sleep", "60"])
    try:
        leave_note(engine, "run-alive", host=locks.host, pid=alive.pid, since=time.time())
        stale: list[Holder] = []
        locks.on_stale = stale.append
        with pytest.raises(Busy):
            locks.acquire(JOB, note={"job": "nightly", "run_id": "r4"}, refuse=set(JOB))
        assert stale == [] and notes(engine)[0]["run_id"] == "run-alive"
    finally:
        alive.kill()
        alive.wait()


def test_the_sweep_reports_dead_runners_and_leaves_live_ones(
    tmp_path: Path, engine: Engine
) -> None:
    leave_note(engine, "run-gone", host="backup-host-2", pid=7)
    live = AdvisoryLocks(engine)  # a run going on elsewhere: its session holds its lock
    assert live.try_acquire(["job:other"])
    live.write_note({"job": "other", "run_id": "run-live", "host": "h3", "pid": 9, "since": 2.0})
    stale: list[Holder] = []
    sweeper = Locks(tmp_path, engine=engine, on_stale=stale.append)
    try:
        assert sweeper.sweep() == 1
        assert sweeper.sweep() == 0  # reported once
        assert [h.run_id for h in stale] == ["run-gone"]
        # the dead runner's note stays: a runner on its host must still find its command
        assert sorted(str(n["run_id"]) for n in notes(engine)) == ["run-gone", "run-live"]
    finally:
        live.release()
    assert [n["run_id"] for n in notes(engine)] == ["run-gone"]
    locks = Locks(tmp_path, engine=engine)
    held = locks.acquire(["job:nightly"], note={"job": "nightly", "run_id": "run-next"})
    assert held is not None
    held.release()  # the next holder replaced it; giving the lock back leaves no note
    assert notes(engine) == []


def test_the_sweep_forgets_a_dead_runner_of_this_host(tmp_path: Path, engine: Engine) -> None:
    locks = Locks(tmp_path, engine=engine)
    leave_note(engine, "run-here", host=locks.host, pid=dead_pid(), since=time.time())
    stale: list[Holder] = []
    locks.on_stale = stale.append
    assert locks.sweep() == 1
    assert [h.run_id for h in stale] == ["run-here"] and notes(engine) == []


def test_a_command_left_running_by_a_dead_runner_of_this_data_dir_is_waited_for(
    tmp_path: Path,
) -> None:
    """One server, lock files only (SQLite): the same wait, found through the file's note."""
    locks = Locks(tmp_path)
    held = locks.acquire(JOB, note={"job": "nightly"})
    assert held is not None
    note = {"pid": dead_pid(), "host": locks.host, "job": "nightly", "run_id": "run-file"}
    held.files[0].write_note(note)
    os.close(held.files[0].fd)  # type: ignore[arg-type]
    held.files[0].fd = None  # the process died: its lock went, its note stayed
    held.release()
    orphan = left_running("run-file")
    stale: list[Holder] = []
    locks.on_stale = stale.append
    try:
        for _ in range(2):  # found again, reported once
            with pytest.raises(Busy) as refused:
                locks.acquire(JOB, note={"job": "nightly"}, refuse=set(JOB))
            assert f"pid {orphan.pid}" in refused.value.message
    finally:
        orphan.kill()
        orphan.wait()
    again = locks.acquire(JOB, note={"job": "nightly"})
    assert again is not None
    again.release()
    assert [h.run_id for h in stale] == ["run-file"]


def test_the_sweep_of_one_servers_lock_files(tmp_path: Path) -> None:
    """One server on SQLite, restarted after a crash: its dead runs are closed at start,
    not when their jobs next run."""
    locks = Locks(tmp_path)
    for job, run_id in (("a", "run-a"), ("b", "run-b")):
        held = locks.acquire([f"job:{job}"], note={"job": job})
        assert held is not None
        note = {"pid": dead_pid(), "host": locks.host, "job": job, "run_id": run_id}
        held.files[0].write_note(note)
        os.close(held.files[0].fd)  # type: ignore[arg-type]
        held.files[0].fd = None
        held.release()
    orphan = left_running("run-b")
    stale: list[Holder] = []
    sweeper = Locks(tmp_path, on_stale=stale.append)
    try:
        assert sweeper.sweep() == 2
        assert sweeper.sweep() == 0  # each reported once
        assert sorted(h.run_id or "" for h in stale) == ["run-a", "run-b"]
        assert [h.run_id for h in locks.holders(["job:a", "job:b"])] == ["run-b"]  # kept
        with pytest.raises(Busy):
            locks.acquire(["job:b"], note={"job": "b"}, refuse={"job:b"})
    finally:
        orphan.kill()
        orphan.wait()
