"""Any text a client sends is stored on both databases: NUL bytes and lone surrogates
(which PostgreSQL or UTF-8 refuse) become replacement characters instead of a 5xx."""

from __future__ import annotations


def test_nul_and_lone_surrogates_are_stored_not_refused(api):
    body = (
        '{"job": "a", "status": "success", "started_at": 1700000000, "host": "h\\u0000",'
        ' "message": "a\\u0000b", "log": "x\\ud800y", "phases": {"d\\u0000ump": 1}}'
    )
    headers = {**api.auth_headers, "Content-Type": "application/json"}
    r = api.post("/api/v1/runs", content=body, headers=headers)
    assert r.status_code == 201, r.text
    run = api.get(f"/api/v1/runs/{r.json()['id']}").json()
    assert run["message"] == "a\ufffdb"
    assert run["host"] == "h\ufffd"
    assert run["log"] == "x?y"
    assert run["phases"][0]["name"] == "d\ufffdump"
    start = api.post("/api/v1/runs/start", json={"job": "a"}, headers=api.auth_headers).json()
    files = {"path": "/srv/\u0000odd", "size": 1}
    r = api.post(f"/api/v1/runs/{start['id']}/files", json=files, headers=api.auth_headers)
    assert r.status_code == 200, r.text
    r = api.post(
        f"/api/v1/runs/{start['id']}/finish",
        json={"status": "success", "message": "done\u0000", "log": "tail\u0000"},
        headers=api.auth_headers,
    )
    assert r.status_code == 200, r.text
    run = api.get(f"/api/v1/runs/{start['id']}").json()
    assert run["message"] == "done\ufffd" and run["log"] == "tail\ufffd"
    assert run["file_records"][0]["path"] == "/srv/\ufffdodd"
