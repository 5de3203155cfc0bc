"""The OpenAPI document (/docs) builds cleanly and names every operation once."""

from __future__ import annotations

import gc
import warnings

from backwatch.web.app import create_app
from tests.conftest import make_settings


def test_the_openapi_document_builds_without_warnings_and_ids_are_unique(tmp_path):
    app = create_app(make_settings(tmp_path / "data"))
    gc.collect()  # what earlier tests of this worker left for the collector goes now
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns of duplicate operation ids
        # (a socket an earlier test left open, collected meanwhile, is not this build's)
        warnings.simplefilter("default", ResourceWarning)
        spec = app.openapi()
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    for path in ("/ping/{key}", "/ping/{key}/{part}", "/ping/{key}/{slug}/{action}"):
        assert sorted(spec["paths"][path]) == ["get", "head", "post"]
