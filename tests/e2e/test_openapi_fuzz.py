"""schemathesis against a real ``backwatch serve``: requests generated from /openapi.json
(valid and invalid bodies, parameters, ids) never get a 5xx, and every status answered is
one the document declares, in the error envelope it declares (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (dev extra) not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    status_code_conformance,
)

from tests.conftest import Server  # noqa: E402

#: examples per operation: ~50 operations, a few seconds each on 2 cores
EXAMPLES = 12
#: a job, a run and an alert that exist, so generated ids sometimes hit something
_SEED = (
    '{"job": "nightly", "id": "run-1", "status": "failed", "started_at": 1796650000,'
    ' "duration_s": 5, "message": "seed"}'
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    server = Server(root / "data").start()
    try:
        import urllib.request

        request = urllib.request.Request(
            server.url + "/api/v1/runs",
            data=_SEED.encode(),
            headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()
        yield server
    finally:
        server.stop()


#: paths not fuzzed: an endless event stream, and calls that start work on the server
SKIP = (
    "/api/v1/stream",
    "/api/v1/jobs/{job_id}/run",
    "/api/v1/jobs/{job_id}/drill",
    "/api/v1/health/checks/fix",
)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_server_error_and_no_undeclared_status(served: Server, mode: str) -> None:
    from schemathesis.generation.modes import GenerationMode

    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    headers = {"Authorization": f"Bearer {served.token}"}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance]
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIP:
            continue
        tried += 1

        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, checks=checks, timeout=30)

        try:
            call()
        except Unsatisfiable:
            continue  # nothing of this operation can be made invalid (no parameters, no body)
        except (Exception, BaseExceptionGroup) as exc:  # every operation is tried, all listed
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert tried > 40
    assert not failures, "\n\n".join(failures)
