"""``serve`` freezes its start-up heap, so full collections do not walk it on every pass."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from backwatch.web.app import create_app
from tests.conftest import make_settings


def test_a_served_app_freezes_its_heap_once_started(tmp_path):
    gc.unfreeze()
    app = create_app(make_settings(tmp_path / "data"), freeze_heap=True)
    try:
        assert gc.get_freeze_count() == 0
        with TestClient(app) as client:
            assert gc.get_freeze_count() > 10_000  # the modules, the app, its caches
            assert client.get("/health").status_code == 200
    finally:
        gc.unfreeze()


def test_an_app_built_by_tests_leaves_the_heap_alone(tmp_path):
    gc.unfreeze()
    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        assert client.get("/health").status_code == 200
        assert gc.get_freeze_count() == 0
