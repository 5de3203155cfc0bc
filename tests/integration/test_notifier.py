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
