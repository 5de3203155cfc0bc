"""Duplicati's --send-http-url reports (tests/fixtures/duplicati/, shapes from Duplicati's
source) become runs through POST /api/v1/ingest/duplicati, in both of its formats."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backwatch.services import tokens

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "duplicati"
URL = "/api/v1/ingest/duplicati"
EXPECTED = {  # case → status, size, duration, files, new, changed, uploaded
    "success": ("success", 8250187341, 249.4663177, 1523, 9, 3, 1063219),
    "warning": ("warning", 8250187341, 263.25, 1523, 9, 3, 1063219),
    "error": ("failed", None, 12.5, None, None, None, None),
}


def _form(text: str, field: str = "message") -> bytes:
    """The body SendHttpMessage posts: ``message=`` + Uri.EscapeDataString(report)."""
    return f"{field}={urllib.parse.quote(text, safe='-_.~')}".encode()


def _send(api, case: str, fmt: str, query: str = "", headers: dict | None = None):
    if fmt == "json":
        body, ctype = (FIXTURES / f"{case}.json").read_bytes(), "application/json"
    else:
        body = _form((FIXTURES / f"{case}.txt").read_text())
        ctype = "application/x-www-form-urlencoded"
    return api.post(
        URL + query,
        content=body,
        headers={"Content-Type": ctype, **(api.auth_headers if headers is None else headers)},
    )


def _runs(api, job: str) -> list[dict]:
    resp = api.get(f"/api/v1/runs?job={job}&limit=50", headers=api.auth_headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


@pytest.mark.parametrize("fmt", ["json", "form"])
def test_three_reports_are_three_runs(api, fmt: str) -> None:
    ids = {}
    for case, (status, *_rest) in EXPECTED.items():
        resp = _send(api, case, fmt)
        assert resp.status_code == 201, resp.text
        assert resp.json()["status"] == status
        assert resp.json()["job"] == "photos-nas"  # from the report's backup-name
        ids[case] = resp.json()["id"]
    for case, (status, size, duration, files, new, changed, uploaded) in EXPECTED.items():
        run = api.get(f"/api/v1/runs/{ids[case]}", headers=api.auth_headers).json()
        assert run["status"] == status
        assert run["size_bytes"] == size
        assert run["duration_s"] == pytest.approx(duration, abs=1)
        assert (run["files"], run["files_new"], run["files_changed"]) == (files, new, changed)
        assert run["bytes_added"] == (uploaded if fmt == "json" else None)  # text: no backend
        assert run["host"] == "nas"
        assert run["tool"] == "duplicati"
    failed = api.get(f"/api/v1/runs/{ids['error']}", headers=api.auth_headers).json()
    assert "Connection refused" in failed["message"]
    warned = api.get(f"/api/v1/runs/{ids['warning']}", headers=api.auth_headers).json()
    assert "lightroom.lrcat-journal" in warned["message"]
    assert len(_runs(api, "photos-nas")) == 3
    # Duplicati retries, and may send to a form URL and a JSON URL: still one run each
    other = "form" if fmt == "json" else "json"
    for case in EXPECTED:
        again = _send(api, case, other)
        assert again.status_code == 200, again.text
        assert again.json()["created"] is False
    assert len(_runs(api, "photos-nas")) == 3


def test_token_and_job_in_the_url(api) -> None:
    refused = _send(api, "success", "form", headers={})
    assert refused.status_code == 401
    assert "token" in refused.json()["error"]["message"]
    query = "?" + urllib.parse.urlencode({"job": "photos", "token": api.token})
    resp = _send(api, "success", "form", query=query, headers={})
    assert resp.status_code == 201, resp.text
    assert resp.json()["job"] == "photos"
    bad_job = _send(api, "success", "json", query="?job=Not%20A%20Slug")
    assert bad_job.status_code == 422
    assert bad_job.json()["error"]["details"][0]["field"] == "job"


def test_another_message_parameter_name(api) -> None:
    text = (FIXTURES / "warning.txt").read_text()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **api.auth_headers}
    resp = api.post(URL + "?parameter=report", content=_form(text, "report"), headers=headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "warning"


def test_no_result_is_unknown_and_other_operations_are_not_runs(api) -> None:
    report = json.loads((FIXTURES / "success.json").read_text())
    for name in ("ParsedResult", "BackendStatistics", "LimitedMessages"):
        report["Data"].pop(name)
    headers = {"Content-Type": "application/json", **api.auth_headers}
    resp = api.post(URL, content=json.dumps(report), headers=headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "unknown"

    report["Data"]["ParsedResult"] = "Success"
    report["Data"]["MainOperation"] = report["Extra"]["OperationName"] = "Repair"
    skipped = api.post(URL, content=json.dumps(report), headers=headers)
    assert skipped.status_code == 200
    assert skipped.json()["recorded"] is False
    assert skipped.json()["operation"] == "Repair"

    report["Data"]["MainOperation"] = "Test"
    report["Data"]["BeginTime"] = "2026-12-08T02:00:00.0000000Z"
    check = api.post(URL, content=json.dumps(report), headers=headers)
    assert check.status_code == 201, check.text
    assert (check.json()["kind"], check.json()["status"]) == ("check", "success")
    assert len(_runs(api, "photos-nas")) == 2


@pytest.mark.parametrize(
    ("body", "ctype", "words"),
    [
        (b"", "application/json", "empty"),
        (b'{"Data": {"ParsedResult": ', "application/json", "malformed JSON"),
        (b'{"status": "success"}', "application/json", "not a Duplicati JSON report"),
        (b"hello=world", "application/x-www-form-urlencoded", "no 'message' field"),
        (_form("Backup went fine, probably"), "application/x-www-form-urlencoded",
         "not a Duplicati report"),
        (b"\x00\xff\xfe garbage", "text/plain", "not a Duplicati report"),
    ],
)  # fmt: skip
def test_malformed_bodies_get_a_400_envelope(api, body: bytes, ctype: str, words: str) -> None:
    resp = api.post(URL, content=body, headers={"Content-Type": ctype, **api.auth_headers})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "malformed"
    assert words in resp.json()["error"]["message"]
    assert _runs(api, "photos-nas") == []


def test_a_wrong_value_names_its_field(api) -> None:
    report = json.loads((FIXTURES / "success.json").read_text())
    report["Data"]["SizeOfExaminedFiles"] = "lots"
    resp = api.post(
        URL, content=json.dumps(report), headers={"Content-Type": "application/json",
                                                  **api.auth_headers},
    )  # fmt: skip
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "Data.SizeOfExaminedFiles"


# -- fuzzing: no body makes the endpoint answer 5xx ------------------------------------------

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())
leaves = st.one_of(
    st.none(), st.booleans(), st.text(chars, max_size=20),
    st.sampled_from([0, -1, 2**63, 2**70, 1e308, 0.5, "0001-01-01T00:00:00",
                     "9999-12-31T23:59:59Z", "99999999.23:59:59", "00:00:00", "Fatal",
                     "Unknown", "Backup", "Test", "12/5/2026 2:00:03 AM (99999999999999)"]),
    st.integers(min_value=-(2**70), max_value=2**70),
)  # fmt: skip
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(chars, max_size=8), inner, max_size=3), max_leaves=8)  # fmt: skip
DATA_KEYS = sorted(json.loads((FIXTURES / "success.json").read_text())["Data"])
TEXT_LINES = (FIXTURES / "warning.txt").read_text().splitlines()


def _answers_cleanly(resp) -> None:
    assert resp.status_code < 500, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    if resp.status_code >= 400:
        assert resp.json()["error"]["message"]


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from([*DATA_KEYS, "Extra", "LogLines", "Exception"]),
                            values, max_size=4),
)  # fmt: skip
def test_fuzzed_json_reports(api, changes: dict) -> None:
    report = json.loads((FIXTURES / "success.json").read_text())
    for key, value in changes.items():
        if key in ("Extra", "LogLines", "Exception"):
            report[key] = value
        else:
            report["Data"][key] = value
    body = json.dumps(report).encode("utf-8", "surrogatepass")
    resp = api.post(URL, content=body, headers={"Content-Type": "application/json",
                                                **api.auth_headers})  # fmt: skip
    _answers_cleanly(resp)


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, len(TEXT_LINES) - 1), st.text(chars, max_size=40)),
                   max_size=4),
    raw=st.binary(max_size=200),
)  # fmt: skip
def test_fuzzed_text_reports(api, edits: list, raw: bytes) -> None:
    lines = list(TEXT_LINES)
    for index, line in edits:
        lines[index] = line
    text = "\n".join(lines).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    form = {"Content-Type": "application/x-www-form-urlencoded", **api.auth_headers}
    _answers_cleanly(api.post(URL, content=_form(text), headers=form))
    for ctype in ("application/x-www-form-urlencoded", "application/json", "text/plain"):
        _answers_cleanly(
            api.post(URL, content=raw, headers={"Content-Type": ctype, **api.auth_headers})
        )


def test_the_token_scope_and_patterns_hold(api) -> None:
    hub = api.app.state.hub
    limited, _ = hub.write(tokens.create_token("dup", "ingest", hub.now(), jobs=["photos*"]))
    reader, _ = hub.write(tokens.create_token("ro", "read", hub.now()))
    ok = _send(api, "success", "json", query=f"?token={limited}", headers={})
    assert ok.status_code == 201, ok.text  # photos-nas matches photos*
    other = _send(api, "warning", "json", query=f"?job=mail&token={limited}", headers={})
    assert other.status_code == 403, other.text
    read_only = _send(api, "error", "json", query=f"?token={reader}", headers={})
    assert read_only.status_code == 403, read_only.text
    wrong = _send(api, "error", "json", query="?token=bw_not-a-token", headers={})
    assert wrong.status_code == 401
    assert len(_runs(api, "photos-nas")) == 1
    assert _runs(api, "mail") == []
