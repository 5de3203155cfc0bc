"""The outbox: two servers on one database never send a message twice."""

from __future__ import annotations

import threading
from pathlib import Path

from backwatch.services import notifier
from backwatch.services.hub import Hub
from backwatch.store import tables as t
from backwatch.store.connect import make_engine
from tests.conftest import make_settings

URL = "json://127.0.0.1:9/hook"  # never contacted: the sender below records instead


def test_two_instances_claim_each_delivery_once(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "backwatch.toml"
    config.write_text(f'[[notify]]\nurls = ["{URL}"]\n')
    settings = make_settings(tmp_path / "data", db_url, BACKWATCH_CONFIG=str(config))
    with Hub(settings) as hub:
        hub.write(notifier.queue_test(settings, [URL] * 60, 1000.0))
    sent: list[str] = []
    lock = threading.Lock()

    def sender(url: str, title: str, body: str, severity: str) -> None:
        with lock:
            sent.append(url)

    engines = [make_engine(settings.db_url), make_engine(settings.db_url)]  # two "servers"
    start = threading.Barrier(2)

    def instance(engine) -> None:
        start.wait()
        while notifier.deliver(engine, settings, 1000.0, sender=sender)["sent"]:
            pass

    threads = [threading.Thread(target=instance, args=(e,)) for e in engines]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    with engines[0].connect() as conn:
        statuses = [r.status for r in conn.execute(t.deliveries.select())]
    for engine in engines:
        engine.dispose()
    assert len(sent) == 60
    assert statuses == ["sent"] * 60


def test_a_permanent_failure_marks_the_channel_and_is_not_retried(tmp_path: Path) -> None:
    config = tmp_path / "backwatch.toml"
    config.write_text('[[notify]]\nurls = ["bogus://nothing"]\n')
    settings = make_settings(tmp_path / "data", None, BACKWATCH_CONFIG=str(config))
    with Hub(settings) as hub:
        hub.write(notifier.queue_test(settings, ["bogus://nothing"], 1000.0))
        outcome = notifier.deliver(hub.read_engine, settings, 1000.0)
        assert outcome == {"sent": 0, "retry": 0, "dead": 1}
        assert notifier.deliver(hub.read_engine, settings, 99999.0) == {
            "sent": 0,
            "retry": 0,
            "dead": 0,
        }
        [channel] = notifier.channel_status(hub.read_engine)
    assert channel["failing"] and "not a valid Apprise URL" in channel["last_error"]


def _queue(tmp_path: Path, db_url: str, count: int):
    config = tmp_path / "backwatch.toml"
    config.write_text(f'[[notify]]\nurls = ["{URL}"]\n')
    settings = make_settings(tmp_path / "data", db_url, BACKWATCH_CONFIG=str(config))
    with Hub(settings) as hub:
        hub.write(notifier.queue_test(settings, [URL] * count, 1000.0))
    return settings


def _statuses(engine) -> list[str]:
    with engine.connect() as conn:
        return [r.status for r in conn.execute(t.deliveries.select().order_by(t.deliveries.c.id))]


def test_each_delivery_is_claimed_only_when_its_turn_comes(tmp_path: Path, db_url: str) -> None:
    """A round never claims messages ahead: one killed mid-round leaves the rest pending,
    for any instance to send at once, not 'sending' until their claims expire."""
    settings = _queue(tmp_path, db_url, 3)
    engine = make_engine(settings.db_url)
    seen: list[list[str]] = []

    def sender(url: str, title: str, body: str, severity: str) -> None:
        seen.append(_statuses(engine))

    try:
        assert notifier.deliver(engine, settings, 1000.0, sender=sender)["sent"] == 3
        assert _statuses(engine) == ["sent"] * 3
    finally:
        engine.dispose()
    assert seen == [
        ["sending", "pending", "pending"],
        ["sent", "sending", "pending"],
        ["sent", "sent", "sending"],
    ]


def test_a_dead_workers_claim_is_taken_over_only_once_it_expires(
    tmp_path: Path, db_url: str
) -> None:
    settings = _queue(tmp_path, db_url, 1)
    engine = make_engine(settings.db_url)
    sent: list[str] = []
    try:
        # a worker claimed it at 1000 and died before marking it (sent or not: unknown)
        assert notifier.claim_one(engine, 1000.0, "dead-host:1/attempt") is not None
        quiet = notifier.deliver(engine, settings, 1000.0 + notifier.STALE_CLAIM_S - 1,
                                 sender=lambda *a: sent.append("early"))  # fmt: skip
        assert quiet == {"sent": 0, "retry": 0, "dead": 0} and sent == []
        later = notifier.deliver(engine, settings, 1000.0 + notifier.STALE_CLAIM_S + 1,
                                 sender=lambda *a: sent.append("again"))  # fmt: skip
        assert later["sent"] == 1 and sent == ["again"]  # at least once: sent again
        assert _statuses(engine) == ["sent"]
    finally:
        engine.dispose()


def test_a_mark_by_an_attempt_whose_claim_was_taken_over_changes_nothing(
    tmp_path: Path, db_url: str
) -> None:
    """A worker that hung past its claim's expiry finds the row another worker claimed:
    its late 'sent' does not overwrite the other's claim."""
    settings = _queue(tmp_path, db_url, 1)
    engine = make_engine(settings.db_url)
    try:
        slow = notifier.claim_one(engine, 1000.0, "slow:1/a")
        assert slow is not None
        later = 1000.0 + notifier.STALE_CLAIM_S + 1
        fast = notifier.claim_one(engine, later, "fast:2/b")
        assert fast is not None and fast["claimed_by"] == "fast:2/b"
        assert notifier._record(engine, slow, later + 1, None) == "sent"
        with engine.connect() as conn:
            row = conn.execute(t.deliveries.select()).mappings().one()
        assert (row["status"], row["claimed_by"]) == ("sending", "fast:2/b")
        assert notifier._record(engine, fast, later + 2, None) == "sent"
        assert _statuses(engine) == ["sent"]
    finally:
        engine.dispose()
