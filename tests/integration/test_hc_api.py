"""Healthchecks' management API (/api/v3/) on a real app: fields, errors and keys as
Healthchecks documents them (SQLite and PostgreSQL). The third-party client's test is
tests/e2e/test_hc_client.py; badges are tests/integration/test_badges.py."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from backwatch.services.tokens import create_token

V3 = "/api/v3"


def key(api) -> dict[str, str]:
    return {"X-Api-Key": api.token}


def scoped_key(api, scope: str, name: str | None = None) -> dict[str, str]:
    hub = api.app.state.hub
    secret, _ = hub.write(create_token(name or scope, scope, hub.now()))
    return {"X-Api-Key": secret}


def create(api, **body) -> dict:
    resp = api.post(f"{V3}/checks/", json=body, headers=key(api))
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_create_returns_healthchecks_fields_and_a_working_ping_url(api):
    check = create(api, name="nightly-db", tags="prod db", desc="the database", timeout=86400,
                   grace=1800)  # fmt: skip
    assert check["name"] == check["slug"] == "nightly-db"
    assert check["tags"] == "prod db"
    assert check["desc"] == "the database"
    assert check["timeout"] == 86400 and check["grace"] == 1800
    assert check["status"] == "new" and check["n_pings"] == 0 and check["started"] is False
    code = check["uuid"]
    assert check["ping_url"].endswith(f"/ping/{code}")
    assert check["update_url"].endswith(f"/api/v3/checks/{code}")
    assert check["pause_url"] == check["update_url"] + "/pause"
    # the job behind it: a period schedule and the grace
    job = api.get("/api/v1/jobs/nightly-db").json()
    assert job["schedule"] == "1d" and job["grace_s"] == 1800 and job["tags"] == ["prod", "db"]

    assert api.post(urlsplit(check["ping_url"]).path + "/start").status_code == 200
    started = api.get(f"{V3}/checks/{code}", headers=key(api)).json()
    assert started["started"] is True and started["n_pings"] == 1
    assert api.get(f"/api/v1/checks/{code}", headers=key(api)).json()["status"] == "started"
    resp = api.post(urlsplit(check["ping_url"]).path, content=b"dumped 3 tables")
    assert resp.status_code == 200
    up = api.get(f"{V3}/checks/{code}", headers=key(api)).json()
    assert up["status"] == "up" and up["started"] is False and up["last_ping"].endswith("+00:00")

    pings = api.get(f"{V3}/checks/{code}/pings/", headers=key(api)).json()["pings"]
    assert [(p["type"], p["n"]) for p in pings] == [("success", 1)]
    body = api.get(urlsplit(pings[0]["body_url"]).path, headers=key(api))
    assert body.status_code == 200 and body.text == "dumped 3 tables"
    assert api.get(f"{V3}/checks/{code}/pings/2/body", headers=key(api)).status_code == 404
    for n in ("0", "x", "99999999999999999999999"):
        assert api.get(f"{V3}/checks/{code}/pings/{n}/body", headers=key(api)).status_code == 404


def test_cron_schedule_and_tz(api):
    check = create(api, name="weekly", schedule="0 3 * * 1", tz="Europe/Riga", grace=3600)
    assert check["schedule"] == "0 3 * * 1" and check["tz"] == "Europe/Riga"
    assert "timeout" not in check
    assert check["next_ping"] is not None


def test_unique_upserts_201_then_200(api):
    first = api.post(f"{V3}/checks/", json={"name": "web", "timeout": 3600, "unique": ["name"]},
                     headers=key(api))  # fmt: skip
    assert first.status_code == 201
    again = api.post(f"{V3}/checks/", json={"name": "web", "timeout": 7200, "unique": ["name"]},
                     headers=key(api))  # fmt: skip
    assert again.status_code == 200, again.text
    assert again.json()["uuid"] == first.json()["uuid"] and again.json()["timeout"] == 7200
    # without unique, the same name is a conflict (a job id is unique), never a silent update
    dup = api.post(f"{V3}/checks/", json={"name": "web"}, headers=key(api))
    assert dup.status_code == 409 and "unique" in dup.json()["error"]


def test_list_filters_by_tag_and_slug(api):
    create(api, name="a", tags="prod db")
    create(api, name="b", tags="prod")
    create(api, name="c", tags="dev")
    names = lambda resp: [c["name"] for c in resp.json()["checks"]]  # noqa: E731
    assert names(api.get(f"{V3}/checks/", params={"tag": "prod"}, headers=key(api))) == ["a", "b"]
    both = api.get(f"{V3}/checks/?tag=prod&tag=db", headers=key(api))
    assert names(both) == ["a"]
    assert names(api.get(f"{V3}/checks/", params={"slug": "c"}, headers=key(api))) == ["c"]


def test_update_pause_resume_delete(api):
    check = create(api, name="nas", timeout=3600)
    url = f"{V3}/checks/{check['uuid']}"
    changed = api.post(url, json={"desc": "to the NAS", "tags": "x y"}, headers=key(api)).json()
    assert changed["desc"] == "to the NAS" and changed["tags"] == "x y"
    assert changed["timeout"] == 3600  # left alone
    assert api.post(url + "/resume", headers=key(api)).status_code == 409
    assert api.post(url + "/pause", headers=key(api)).json()["status"] == "paused"
    assert api.get("/api/v1/jobs/nas").json()["paused"] is True
    assert api.post(url + "/resume", headers=key(api)).json()["status"] == "new"
    api.post(urlsplit(check["ping_url"]).path)
    gone = api.delete(url, headers=key(api))
    assert gone.status_code == 200 and gone.json()["name"] == "nas"
    assert api.get(url, headers=key(api)).status_code == 404
    assert api.get("/api/v1/jobs/nas").status_code == 404
    assert api.get("/api/v1/runs", params={"job": "nas"}).json()["items"] == []
    assert api.post(urlsplit(check["ping_url"]).path).status_code == 404  # no longer pings


def test_a_name_is_kept_as_written_its_slug_is_the_job_id_and_only_the_name_changes(api):
    check = create(api, name="Fotos von Oma 📷")
    assert (check["name"], check["slug"]) == ("Fotos von Oma 📷", "fotos-von-oma")
    job = api.get("/api/v1/jobs/fotos-von-oma", headers=api.auth_headers).json()
    assert job["name"] == "Fotos von Oma 📷"
    url = f"{V3}/checks/{check['uuid']}"
    resp = api.post(url, json={"name": "Fotos (alt)"}, headers=key(api))
    assert resp.status_code == 200, resp.text
    assert (resp.json()["name"], resp.json()["slug"]) == ("Fotos (alt)", "fotos-von-oma")
    resp = api.post(url, json={"slug": "other"}, headers=key(api))
    assert resp.status_code == 400 and "cannot be changed" in resp.json()["error"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"timeout": 59}, "json validation error: timeout is too small"),
        ({"grace": 31536001}, "json validation error: grace is too large"),
        ({"timeout": "1h"}, "json validation error: timeout is not a number"),
        ({"name": 5}, "json validation error: name is not a string"),
        ({"schedule": "every day"}, "json validation error: schedule is not a valid cron"),
        ({"tz": "Mars/Base"}, "json validation error: tz is not a valid timezone"),
        ({"unique": ["color"]}, "json validation error: an item in 'unique' has unexpected"),
        ({"channels": "nope"}, "invalid channel identifier: nope"),
        ({"manual_resume": True}, "manual_resume"),
        ({"slug": "-starts-with-a-dash"}, "slug: "),
        ({"slug": "x" * 65}, "slug: "),
    ],
)
def test_bad_bodies_get_healthchecks_errors(api, body, error):
    resp = api.post(f"{V3}/checks/", json={"name": "x", **body}, headers=key(api))
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith(error)
    assert api.get("/api/v1/jobs/x").status_code == 404  # nothing changed


def test_malformed_json_and_not_an_object(api):
    resp = api.post(f"{V3}/checks/", content=b"{nope", headers=key(api))
    assert resp.status_code == 400 and resp.json() == {"error": "could not parse request body"}
    resp = api.post(f"{V3}/checks/", content=b"[1]", headers=key(api))
    assert resp.json() == {"error": "json validation error: value is not an object"}


def test_keys(api):
    assert api.get(f"{V3}/checks/").json() == {"error": "missing api key"}
    assert api.get(f"{V3}/checks/").status_code == 401
    wrong = api.get(f"{V3}/checks/", headers={"X-Api-Key": "bw_nope"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "wrong api key"}
    # backwatch's own Authorization: Bearer is accepted too
    assert api.get(f"{V3}/checks/", headers=api.auth_headers).status_code == 200
    # api_key in the body, as Healthchecks accepts it for POST
    resp = api.post(f"{V3}/checks/", json={"api_key": api.token, "name": "body-key"})
    assert resp.status_code == 201


def test_a_read_key_sees_no_uuid_and_cannot_write(api):
    check = create(api, name="secret-ping", tags="t")
    read = scoped_key(api, "read")
    listed = api.get(f"{V3}/checks/", headers=read).json()["checks"][0]
    for hidden in ("uuid", "ping_url", "update_url", "pause_url", "resume_url", "channels"):
        assert hidden not in listed
    assert check["uuid"] not in str(listed)
    by_key = api.get(f"{V3}/checks/{listed['unique_key']}", headers=read)
    assert by_key.status_code == 200 and by_key.json()["name"] == "secret-ping"
    refused = api.post(f"{V3}/checks/", json={"name": "new"}, headers=read)
    assert refused.status_code == 403 and "admin" in refused.json()["error"]
    assert api.post(f"{V3}/checks/{check['uuid']}/pause", headers=read).status_code == 403
    assert api.delete(f"{V3}/checks/{check['uuid']}", headers=read).status_code == 403
    # operate may pause, as it may over /api/v1/jobs
    operate = scoped_key(api, "operate")
    assert api.post(f"{V3}/checks/{check['uuid']}/pause", headers=operate).status_code == 200


def test_unknown_checks_are_404(api):
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path in [
        ("get", f"{V3}/checks/{missing}"),
        ("post", f"{V3}/checks/{missing}/pause"),
        ("delete", f"{V3}/checks/{missing}"),
        ("get", f"{V3}/checks/{missing}/pings/"),
        ("get", f"{V3}/checks/not-a-uuid"),
    ]:
        resp = getattr(api, method)(path, headers=key(api))
        assert resp.status_code == 404, (path, resp.text)
        assert "error" in resp.json()


def test_channels_badges_status_and_older_versions(api):
    create(api, name="tagged", tags="prod")
    assert api.get(f"{V3}/channels/", headers=key(api)).json() == {"channels": []}
    listed = api.get(f"{V3}/badges/", headers=key(api)).json()["badges"]
    assert set(listed) == {"*", "prod"}
    assert set(listed["prod"]) == {"svg", "svg3", "json", "json3", "shields", "shields3"}
    assert api.get(f"{V3}/status/").text == "OK"
    for v in (1, 2):
        checks = api.get(f"/api/v{v}/checks/", headers=key(api)).json()["checks"]
        assert checks[0]["update_url"].split("/api/")[1].startswith(f"v{v}/")


def test_a_job_from_a_report_is_a_check_too(api):
    resp = api.post("/api/v1/runs", json={"job": "reported", "status": "failed",
                    "started_at": "2026-01-01T00:00:00Z"}, headers=api.auth_headers)  # fmt: skip
    assert resp.status_code in (200, 201), resp.text
    check = api.get(f"{V3}/checks/", params={"slug": "reported"}, headers=key(api)).json()
    assert check["checks"][0]["status"] == "down"
    assert check["checks"][0]["n_pings"] == 1


def test_a_check_uuid_is_masked_in_logs_like_a_ping_key(api):
    check = create(api, name="masked")
    log = f"curl -fsS https://hub/ping/{check['uuid']}\nand {check['uuid'].upper()} again"
    run = {"job": "other", "status": "success", "started_at": "2026-01-01T00:00:00Z", "log": log}
    resp = api.post("/api/v1/runs", json=run, headers=api.auth_headers)
    assert resp.status_code in (200, 201), resp.text
    stored = api.get(f"/api/v1/runs/{resp.json()['id']}").json()["log"]
    assert check["uuid"] not in stored.lower()
    assert stored.count("<ping-key>") == 2
