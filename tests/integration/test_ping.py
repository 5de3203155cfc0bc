"""Healthchecks-compatible ping URLs, every form, on a real app (SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from backwatch.services.pings import PING_BODY_LIMIT


def make_job(api, job: str) -> str:
    """Create ``job`` over the API and answer its ping path (/ping/<key>)."""
    resp = api.put(f"/api/v1/jobs/{job}", json={"description": "pinged"}, headers=api.auth_headers)
    assert resp.status_code == 200, resp.text
    return urlsplit(resp.json()["ping_url"]).path


def runs_of(api, job: str) -> list[dict]:
    resp = api.get("/api/v1/runs", params={"job": job})
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def run_detail(api, run_id: str) -> dict:
    resp = api.get(f"/api/v1/runs/{run_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def project_key(api) -> str:
    resp = api.get("/api/v1/ping-key", headers=api.auth_headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["ping_key"]


def assert_ok(resp, text: str = "OK", status: int = 200) -> None:
    assert resp.status_code == status, resp.text
    assert resp.text == text
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["ping-body-limit"] == str(PING_BODY_LIMIT)


def test_success_ping_records_a_complete_run(api):
    path = make_job(api, "nas")
    assert_ok(api.get(path))
    [run] = runs_of(api, "nas")
    assert run["status"] == "success"
    assert run["source"] == "ping"
    assert run["duration_s"] == 0
    assert run["started_at"] == run["finished_at"]
    assert run["exit_code"] is None


def test_every_method_pings(api):
    path = make_job(api, "nas")
    for method in ("GET", "POST", "HEAD"):
        assert api.request(method, path).status_code == 200
    assert [r["status"] for r in runs_of(api, "nas")] == ["success"] * 3


def test_start_then_finish_is_one_run(api):
    path = make_job(api, "nas")
    assert_ok(api.post(path + "/start"))
    [run] = runs_of(api, "nas")
    assert run["status"] == "running"
    assert_ok(api.post(path, content=b"all done\n"))
    [run] = runs_of(api, "nas")
    assert run["status"] == "success"
    assert run["duration_s"] >= 0
    assert run_detail(api, run["id"])["log"] == "all done\n"


def test_fail_ping(api):
    path = make_job(api, "nas")
    api.get(path + "/start")
    assert_ok(api.post(path + "/fail", content=b"disk full"))
    [run] = runs_of(api, "nas")
    assert run["status"] == "failed"
    assert run["exit_code"] is None
    assert run_detail(api, run["id"])["log"] == "disk full"


@pytest.mark.parametrize(("code", "status"), [(0, "success"), (1, "failed"), (255, "failed")])
def test_exit_status(api, code, status):
    path = make_job(api, "nas")
    assert_ok(api.get(f"{path}/{code}"))
    [run] = runs_of(api, "nas")
    assert run["status"] == status
    assert run["exit_code"] == code
    assert run["message"] == (f"exit status {code}" if code else None)


def test_invalid_exit_status_is_400_and_records_nothing(api):
    path = make_job(api, "nas")
    for suffix in ("/256", "/1000", "/256?rid=not-a-uuid"):
        resp = api.get(path + suffix)
        assert resp.status_code == 400, suffix
        assert resp.text == "invalid url format"
    assert runs_of(api, "nas") == []


def test_unknown_action_is_404(api):
    path = make_job(api, "nas")
    for suffix in ("/nope", "/-1", "/start/extra", "/START", "/1.5"):
        resp = api.get(path + suffix)
        assert resp.status_code == 404, suffix
        assert resp.text == "not found"
    assert runs_of(api, "nas") == []


def test_unknown_key_is_404(api):
    make_job(api, "nas")
    project_key(api)
    for suffix in ("", "/start", "/fail", "/log", "/3", "/nas", "/nas/start", "/new?create=1"):
        resp = api.post("/ping/this-is-not-a-key" + suffix)
        assert resp.status_code == 404, suffix
        assert resp.text == "not found"
    assert runs_of(api, "nas") == []
    assert api.get("/api/v1/jobs/new").status_code == 404


def test_invalid_rid_is_400(api):
    path = make_job(api, "nas")
    resp = api.get(path + "/start?rid=12345")
    assert resp.status_code == 400
    assert resp.text == "invalid uuid format"
    assert runs_of(api, "nas") == []


def test_log_appends_to_the_open_run_without_changing_it(api):
    path = make_job(api, "nas")
    api.post(path + "/start", content=b"starting\n")
    assert_ok(api.post(path + "/log", content=b"50% done\n"))
    [run] = runs_of(api, "nas")
    assert run["status"] == "running"
    assert run["message"] == "50% done"
    api.post(path + "/0", content=b"finished\n")
    [run] = runs_of(api, "nas")
    assert run["status"] == "success"
    assert run_detail(api, run["id"])["log"] == "starting\n50% done\nfinished\n"


def test_log_without_an_open_run_is_a_job_event(api):
    path = make_job(api, "nas")
    assert_ok(api.post(path + "/log", content=b"just saying"))
    assert runs_of(api, "nas") == []
    events = api.get("/api/v1/events", params={"job": "nas"}).json()["items"]
    logs = [e for e in events if e["kind"] == "log"]
    assert len(logs) == 1
    assert logs[0]["detail"]["log"] == "just saying"


def test_body_becomes_the_log_capped_at_100_kb(api):
    path = make_job(api, "nas")
    body = ("x" * 1023 + "\n") * 150  # 150 KB
    assert_ok(api.post(path, content=body.encode()))
    [run] = runs_of(api, "nas")
    log = run_detail(api, run["id"])["log"]
    assert len(log.encode()) == PING_BODY_LIMIT
    assert body.startswith(log)  # the first 100 KB, as Healthchecks keeps


def test_body_cut_inside_a_character_and_bad_bytes_stay_readable(api):
    path = make_job(api, "nas")
    body = b"a" * (PING_BODY_LIMIT - 1) + "é".encode() + b"tail"
    api.post(path, content=body)
    [run] = runs_of(api, "nas")
    assert run_detail(api, run["id"])["log"] == "a" * (PING_BODY_LIMIT - 1)
    api.post(path + "/fail", content=b"bad \xff byte")
    failed = next(r for r in runs_of(api, "nas") if r["status"] == "failed")
    assert run_detail(api, failed["id"])["log"] == "bad \ufffd byte"


def test_the_ping_key_is_masked_in_the_stored_log(api):
    path = make_job(api, "nas")
    key = path.rsplit("/", 1)[1]
    api.post(path, content=f"Using Healthchecks ping URL http://h{path}\n".encode())
    [run] = runs_of(api, "nas")
    log = run_detail(api, run["id"])["log"]
    assert key not in log
    assert "/ping/<ping-key>" in log


def test_rid_pairs_start_and_finish(api):
    path = make_job(api, "nas")
    a, b = "6f1f1c55-5e4b-4b57-9a5a-6d3f3b8f0001", "6F1F1C55-5E4B-4B57-9A5A-6D3F3B8F0002"
    api.get(f"{path}/start?rid={a}")
    api.get(f"{path}/start?rid={b}")
    assert_ok(api.get(f"{path}/fail?rid={b}"))
    assert_ok(api.get(f"{path}?rid={a}"))
    runs = {r["backup_id"]: r for r in runs_of(api, "nas")}
    assert set(runs) == {a, b.lower()}
    assert runs[a]["status"] == "success"
    assert runs[b.lower()]["status"] == "failed"


def test_retried_rid_pings_are_not_counted_twice(api):
    path = make_job(api, "nas")
    rid = "0b3c53a2-2a57-4a36-b1a2-0c7e9f2f0d10"
    for _ in range(2):
        assert_ok(api.get(f"{path}/start?rid={rid}"))
    for _ in range(2):
        assert_ok(api.get(f"{path}/0?rid={rid}"))
    [run] = runs_of(api, "nas")
    assert run["status"] == "success"
    assert run["exit_code"] == 0


def test_finish_without_rid_does_not_close_a_rid_run(api):
    path = make_job(api, "nas")
    rid = "0b3c53a2-2a57-4a36-b1a2-0c7e9f2f0d11"
    api.get(f"{path}/start?rid={rid}")
    api.get(path)
    statuses = sorted((r["backup_id"] or "", r["status"]) for r in runs_of(api, "nas"))
    assert statuses == [("", "success"), (rid, "running")]


def test_second_start_without_rid_cancels_the_older_open_run(api):
    path = make_job(api, "nas")
    api.get(path + "/start")
    api.get(path + "/start")
    api.get(path)
    runs = runs_of(api, "nas")
    assert sorted(r["status"] for r in runs) == ["cancelled", "success"]
    [cancelled] = [r for r in runs if r["status"] == "cancelled"]
    assert cancelled["message"] == "superseded by a newer start ping"
    assert cancelled["finished_at"] is not None


def test_ping_url_from_the_api_is_only_for_token_holders(api):
    make_job(api, "nas")
    assert "ping_url" not in api.get("/api/v1/jobs/nas").json()
    assert "ping_url" in api.get("/api/v1/jobs/nas", headers=api.auth_headers).json()


def test_project_ping_key_needs_a_token_and_stays_the_same(api):
    assert api.get("/api/v1/ping-key").status_code == 401
    key = project_key(api)
    assert project_key(api) == key
    assert len(key) >= 16


@pytest.mark.parametrize(
    ("suffix", "status", "exit_code"),
    [("", "success", None), ("/fail", "failed", None), ("/0", "success", 0), ("/7", "failed", 7)],
)
def test_slug_form(api, suffix, status, exit_code):
    make_job(api, "nas")
    key = project_key(api)
    assert_ok(api.get(f"/ping/{key}/nas/start"))
    assert_ok(api.post(f"/ping/{key}/nas{suffix}", content=b"done"))
    [run] = runs_of(api, "nas")
    assert (run["status"], run["exit_code"]) == (status, exit_code)
    assert run_detail(api, run["id"])["log"] == "done"


def test_slug_form_log_and_errors(api):
    make_job(api, "nas")
    key = project_key(api)
    api.get(f"/ping/{key}/nas/start")
    assert_ok(api.post(f"/ping/{key}/nas/log", content=b"halfway"))
    assert runs_of(api, "nas")[0]["message"] == "halfway"
    assert api.get(f"/ping/{key}/nas/256").text == "invalid url format"
    assert api.get(f"/ping/{key}/nas/bogus").status_code == 404
    assert api.get(f"/ping/{key}/other").status_code == 404
    assert api.get("/api/v1/jobs/other").status_code == 404


def test_slug_form_with_create_makes_the_job(api):
    key = project_key(api)
    assert_ok(api.get(f"/ping/{key}/fresh-job/start?create=1"), "Created", 201)
    assert_ok(api.get(f"/ping/{key}/fresh-job?create=1"))
    job = api.get("/api/v1/jobs/fresh-job").json()
    assert job["origin"] == "auto"
    [run] = runs_of(api, "fresh-job")
    assert run["status"] == "success"


def test_slug_form_create_refuses_a_bad_job_name(api):
    key = project_key(api)
    resp = api.get(f"/ping/{key}/Bad_Name?create=1")
    assert resp.status_code == 400
    assert resp.text.startswith("slug: ")
    resp = api.get(f"/ping/{key}/new-job/256?create=1")
    assert resp.status_code == 400
    assert api.get("/api/v1/jobs/new-job").status_code == 404


def test_slug_form_without_a_project_key_is_404(api):
    make_job(api, "nas")
    assert api.get("/ping/anything/nas?create=1").status_code == 404


def test_a_resent_growing_buffer_is_logged_once(api):
    """borgmatic pings /log and then finishes with the same buffer plus a few lines."""
    path = make_job(api, "nas")
    api.post(path + "/start")
    api.post(path + "/log", content=b"line 1\nline 2\n")
    api.post(path + "/log", content=b"line 1\nline 2\n")
    api.post(path, content=b"line 1\nline 2\nline 3\n")
    [run] = runs_of(api, "nas")
    assert run_detail(api, run["id"])["log"] == "line 1\nline 2\nline 3\n"


def test_nul_bytes_in_the_url_or_body_are_harmless(api):
    path = make_job(api, "nas")
    assert api.get("/ping/bad%00key").status_code == 404
    key = project_key(api)
    assert api.get(f"/ping/{key}/na%00s?create=1").status_code == 404
    assert api.get(f"/ping/{key}/{'x' * 65}/start").status_code == 404
    assert_ok(api.post(path + "/fail", content=b"before\x00after"))
    [run] = runs_of(api, "nas")
    assert run_detail(api, run["id"])["log"] == "before\ufffdafter"
