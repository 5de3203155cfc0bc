"""/metrics carries the watched disks: latest usage and the ``disk_space`` rule's forecast."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

GB = 10**9
DAY = 86400.0


def _samples(metrics: str, name: str) -> dict[str, float]:
    for family in text_string_to_metric_families(metrics):
        if family.name == name:
            return {s.labels["path"]: s.value for s in family.samples}
    return {}


def test_metrics_carry_disk_usage_and_days_until_full(settings) -> None:
    from fastapi.testclient import TestClient

    from backwatch.services import disks
    from backwatch.services.hub import Hub
    from backwatch.web.app import create_app

    now = time.time()
    hub = Hub(settings)
    try:
        for day in range(6):  # 10 GB a day more on a 1 TB disk: 850 GB free → 85 days
            at = now - (5 - day) * DAY
            hub.write(disks.record_samples([("/srv/backups", (100 + 10 * day) * GB, 1000 * GB)],
                                           at, force=True))  # fmt: skip
            hub.write(disks.record_samples([("/srv/flat", 5 * GB, 10 * GB)], at, force=True))
    finally:
        hub.close()
    with TestClient(create_app(settings)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    used = _samples(response.text, "backwatch_disk_used_bytes")
    size = _samples(response.text, "backwatch_disk_size_bytes")
    left = _samples(response.text, "backwatch_disk_days_until_full")
    assert used["/srv/backups"] == 150 * GB and size["/srv/backups"] == 1000 * GB
    assert used["/srv/flat"] == 5 * GB and size["/srv/flat"] == 10 * GB
    assert abs(left["/srv/backups"] - 85) < 0.01, left
    # a disk that does not grow has no forecast: absent, never 0 (which would read "full")
    assert "/srv/flat" not in left
