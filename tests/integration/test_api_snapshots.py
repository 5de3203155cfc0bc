"""The built-in engine over HTTP, on a real ``backwatch serve`` with real snapshots taken by
``backwatch backup JOB``: list, read a page of entries, scan for lost files, restore (byte
for byte, never with a relative target or a read token) and verify (a damaged archive
names its files)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, run_cli


@dataclass
class Site:
    """The server, its config, and per job its source tree and destinations."""

    server: Server
    config: Path
    root: Path
    reader: str

    def tree(self, job: str) -> Path:
        return self.root / job / "src"

    def dest(self, job: str, n: int = 0) -> Path:
        return self.root / job / f"dest{n}"

    def backup(self, job: str) -> None:
        proc = run_cli("backup", job, "--config", str(self.config), "--no-record", "--json")
        assert proc.returncode == 0, proc.stderr

    def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = "admin"
    ) -> tuple[int, Any]:
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            secret = self.server.token if token == "admin" else token
            headers["Authorization"] = f"Bearer {secret}"
        req = urllib.request.Request(
            self.server.url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> Any:
        status, data = self.call("GET", path, token=None)
        assert status == 200, data
        return data


def _make_tree(src: Path) -> None:
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(os.urandom(20_000))
    (src / "sub" / "deep" / "c.txt").write_text("see")
    (src / "sub" / "deep" / "d.txt").write_text("dee")
    (src / "link").symlink_to("a.txt")


JOBS = ("files", "scanned", "damaged", "empty")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("snapshots")
    data = root / "data"
    body = [f'data_dir = "{data}"\n']
    for job in JOBS:
        src = root / job / "src"
        _make_tree(src)
        body.append(
            f'[[jobs]]\nid = "{job}"\ntool = "builtin"\n'
            f'destinations = ["{root / job / "dest0"}", "{root / job / "dest1"}"]\n'
            f'[jobs.builtin]\npaths = ["{src}"]\nexclude = ["*.tmp"]\n'
        )
    body.append('[[jobs]]\nid = "cmd"\ntool = "command"\ncommand = "true"\n')
    config = root / "backwatch.toml"
    config.write_text("\n".join(body))
    server = Server(data, env={"BACKWATCH_CONFIG": str(config)}).start()
    reader = run_cli("token", "create", "--name", "reader", "--scope", "read",
                     "--config", str(config))  # fmt: skip
    assert reader.returncode == 0, reader.stderr
    site = Site(server, config, root, reader.stdout.strip())
    for job in ("files", "scanned", "damaged"):
        site.backup(job)
    (site.tree("files") / "a.txt").write_text("alpha, second version")
    site.backup("files")  # an incremental
    yield site
    server.stop()


def test_the_list_is_newest_first_with_figures_per_destination(site: Site) -> None:
    listing = site.get("/api/v1/jobs/files/snapshots")
    assert listing["destination"] == str(site.dest("files")) and listing["dest"] == 0
    assert listing["destinations"] == [str(site.dest("files", 0)), str(site.dest("files", 1))]
    newer, older = listing["items"]
    assert (newer["kind"], older["kind"]) == ("incremental", "full")
    assert newer["parent"] == older["id"] and newer["bases"] == [older["id"]]
    assert newer["created_at"] > older["created_at"] and newer["created_at"].endswith("Z")
    assert older["files"] == 4 and older["size_bytes"] == 20_011
    assert newer["bytes_added"] > 0 and newer["size_bytes"] == 20_027
    second = site.get("/api/v1/jobs/files/snapshots?dest=1")
    assert second["destination"] == str(site.dest("files", 1)) and len(second["items"]) == 2
    assert site.get("/api/v1/jobs/empty/snapshots")["items"] == []
    status, error = site.call("GET", "/api/v1/jobs/files/snapshots?dest=2")
    assert status == 422 and error["error"]["details"][0]["field"] == "dest"


def test_a_snapshot_pages_its_entries_and_filters_by_path(site: Site) -> None:
    first = site.get("/api/v1/jobs/files/snapshots/latest?limit=1000")
    paths = [e["path"] for e in first["entries"]]
    assert paths == ["src", "src/a.txt", "src/link", "src/sub", "src/sub/b.bin",
                     "src/sub/deep", "src/sub/deep/c.txt", "src/sub/deep/d.txt"]  # fmt: skip
    assert first["matched"] == 8 and first["next_cursor"] is None
    by_path = {e["path"]: e for e in first["entries"]}
    assert by_path["src/a.txt"]["snapshot"] == first["id"]  # changed: held by the latest
    assert by_path["src/sub/b.bin"]["snapshot"] == first["parent"]  # unchanged: by the base
    assert by_path["src/a.txt"]["size"] == len("alpha, second version")
    assert by_path["src/link"]["target"] == "a.txt" and by_path["src"]["type"] == "dir"
    # pages of 3 under src/sub, by id prefix: the same entries, in order
    prefix = first["id"][:17]
    seen, cursor, pages = [], None, 0
    while True:
        query = "?path=src/sub/&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = site.get(f"/api/v1/jobs/files/snapshots/{prefix}{query}")
        assert page["id"] == first["id"] and page["matched"] == 4
        seen += [e["path"] for e in page["entries"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2 and seen == [p for p in paths if p.startswith("src/sub/")]
    status, error = site.call("GET", f"/api/v1/jobs/files/snapshots/latest?cursor={cursor or ''}x")
    assert status == 422 and error["error"]["details"][0]["field"] == "cursor"
    page = site.get("/api/v1/jobs/files/snapshots/latest?path=src/sub/&limit=3")
    other = f"/api/v1/jobs/files/snapshots/latest?path=src&cursor={page['next_cursor']}"
    status, error = site.call("GET", other)
    assert status == 422 and "belongs to" in error["error"]["message"]
    status, error = site.call("GET", "/api/v1/jobs/files/snapshots/zz")
    assert status == 404 and "'zz' is not a snapshot" in error["error"]["message"]
    status, error = site.call("GET", "/api/v1/jobs/files/snapshots/latest?limit=0")
    assert status == 422 and error["error"]["details"][0]["field"] == "limit"


def test_scan_finds_lost_changed_and_never_backed_up_files(site: Site) -> None:
    tree = site.tree("scanned")
    clean = site.get("/api/v1/jobs/scanned/scan")
    assert clean["counts"] == {"lost": 0, "changed": 0, "new": 0}
    (tree / "a.txt").unlink()
    (tree / "sub" / "deep" / "c.txt").write_text("see, changed")
    (tree / "sub" / "new.txt").write_text("never backed up")
    (tree / "sub" / "scratch.tmp").write_text("excluded by the job")
    scan = site.get("/api/v1/jobs/scanned/scan")
    assert scan["snapshot"] == site.get("/api/v1/jobs/scanned/snapshots")["items"][0]["id"]
    assert scan["lost"] == ["src/a.txt"]
    assert scan["changed"] == ["src/sub/deep/c.txt"] and scan["new"] == ["src/sub/new.txt"]
    assert scan["counts"] == {"lost": 1, "changed": 1, "new": 1}
    # the whole source folder gone: every file it held is lost
    tree.rename(tree.with_name("moved"))
    try:
        gone = site.get("/api/v1/jobs/scanned/scan")
    finally:
        tree.with_name("moved").rename(tree)
    assert gone["counts"]["lost"] == 4 and "src/sub/b.bin" in gone["lost"]
    assert any("gone" in p for p in gone["problems"])


def test_restore_brings_every_file_back_byte_for_byte(site: Site, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    status, result = site.call("POST", "/api/v1/jobs/files/restore", {"target": str(target)})
    assert status == 200, result
    assert result["problems"] == [] and "src/sub/deep/d.txt" in result["restored"]
    assert result["destination"] == str(site.dest("files"))
    tree = site.tree("files")
    for path in tree.rglob("*"):
        again = target / "src" / path.relative_to(tree)
        if path.is_symlink():
            assert os.readlink(again) == os.readlink(path)
        elif path.is_file():
            assert again.read_bytes() == path.read_bytes(), path
    events = site.get("/api/v1/events?job=files&kind=restore")["items"]
    [event] = [e for e in events if (e["detail"] or {}).get("target") == str(target)]
    assert event["kind"] == "restore" and event["actor"] == "default"
    assert event["to_state"] == "restored" and event["trigger"] == "api"
    assert event["detail"]["restored"] == len(result["restored"]) == 5  # 4 files, 1 link
    assert event["detail"]["snapshot"] == result["snapshot"]


def test_restore_selected_paths_as_of_a_time_with_a_conflict_rule(
    site: Site, tmp_path: Path
) -> None:
    older = site.get("/api/v1/jobs/files/snapshots")["items"][1]
    target = tmp_path / "t"
    (target / "src").mkdir(parents=True)
    (target / "src" / "a.txt").write_text("mine")
    body = {"as_of": older["created_at"], "target": str(target), "paths": ["src/a.txt"],
            "conflict": "rename"}  # fmt: skip
    status, result = site.call("POST", "/api/v1/jobs/files/restore", body)
    assert status == 200, result
    assert result["snapshot"] == older["id"] and result["restored"] == ["src/a.txt"]
    assert (target / "src" / "a.txt").read_text() == "mine"
    assert (target / "src" / "a.txt.restored").read_text() == "alpha"  # the older version
    assert not (target / "src" / "sub").exists()


def test_a_dry_run_writes_nothing(site: Site, tmp_path: Path) -> None:
    target = tmp_path / "dry"
    body = {"snapshot": "latest", "target": str(target), "dry_run": True}
    status, result = site.call("POST", "/api/v1/jobs/files/restore", body)
    assert status == 200 and result["dry_run"] is True and len(result["restored"]) == 5
    assert not target.exists()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"target": "/tmp/x", "conflict": "merge"}, 422, "conflict"),
        ({"target": "/tmp/x", "paths": "src"}, 422, "paths"),
        ({"target": "/tmp/x", "paths": ["src/nope"]}, 422, "paths"),
        ({"target": "/tmp/x", "dry_run": "yes"}, 422, "dry_run"),
        ({"target": "/tmp/x", "as_of": "yesterday-ish"}, 422, "as_of"),
        ({"target": "/tmp/x", "as_of": 1, "snapshot": "latest"}, 422, "as_of"),
        ({"target": "/tmp/x", "speed": "fast"}, 422, "speed"),
        ({}, 422, "target"),
        ("[1, 2", 400, None),
    ],
)
def test_bad_restore_bodies_name_the_field(
    site: Site, body: Any, status: int, field: str | None
) -> None:
    got, error = site.call("POST", "/api/v1/jobs/files/restore", body)
    assert got == status, error
    if field is not None:
        assert error["error"]["details"][0]["field"] == field


def test_restore_refuses_a_relative_target_one_inside_a_destination_and_a_read_token(
    site: Site, tmp_path: Path
) -> None:
    # relative to the server's working directory (the tests'), it would land in tmp_path
    relative = os.path.relpath(tmp_path / "rel", os.getcwd())
    status, error = site.call("POST", "/api/v1/jobs/files/restore", {"target": relative})
    assert status == 422 and error["error"]["details"][0]["field"] == "target"
    assert "absolute" in error["error"]["message"] and not (tmp_path / "rel").exists()
    inside = {"target": str(site.dest("files", 1) / "restore")}
    status, error = site.call("POST", "/api/v1/jobs/files/restore", inside)
    assert status == 422 and "destination" in error["error"]["message"]
    body = {"target": str(tmp_path / "r")}
    assert site.call("POST", "/api/v1/jobs/files/restore", body, token=site.reader)[0] == 403
    assert site.call("POST", "/api/v1/jobs/files/restore", body, token=None)[0] == 401
    assert not (tmp_path / "r").exists()


def test_verify_is_ok_and_names_the_files_of_a_damaged_archive(site: Site) -> None:
    status, report = site.call("POST", "/api/v1/jobs/files/verify", {"sample": "50%"})
    assert status == 200 and report["ok"] is True and report["checked"] == 2
    status, report = site.call("POST", "/api/v1/jobs/damaged/verify", {"snapshot": "latest"})
    assert status == 200 and report["ok"] and report["checked"] == 4
    (archive,) = site.dest("damaged").glob("snapshots/*/data.tar.zst")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x55
    archive.write_bytes(bytes(data))
    status, report = site.call("POST", "/api/v1/jobs/damaged/verify", {})
    assert status == 200 and report["ok"] is False
    assert report["problems"] and all(p["path"].startswith("src/") for p in report["problems"])
    status, error = site.call("POST", "/api/v1/jobs/files/verify", {"sample": "150%"})
    assert status == 422 and error["error"]["details"][0]["field"] == "sample"
    assert site.call("POST", "/api/v1/jobs/files/verify", {}, token=site.reader)[0] == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/snapshots"),
        ("GET", "/snapshots/latest"),
        ("GET", "/scan"),
        ("POST", "/restore"),
        ("POST", "/verify"),
    ],
)
def test_unknown_jobs_missing_snapshots_and_other_tools(
    site: Site, method: str, path: str, tmp_path: Path
) -> None:
    body = {"target": str(tmp_path / "t")} if path == "/restore" else {}
    send = body if method == "POST" else None
    status, error = site.call(method, f"/api/v1/jobs/nope{path}", send)
    assert status == 404 and "'nope'" in error["error"]["message"]
    status, error = site.call(method, f"/api/v1/jobs/cmd{path}", send)
    assert status == 409, error
    assert "'cmd'" in error["error"]["message"] and "'command'" in error["error"]["message"]
    if path != "/snapshots":
        status, error = site.call(method, f"/api/v1/jobs/empty{path}", send)
        assert status == 404 and "no snapshot yet" in error["error"]["message"]


def test_a_damaged_manifest_is_named_in_the_list_and_hides_no_other(site: Site) -> None:
    broken = site.dest("damaged", 1) / "snapshots" / "20000101T000000.000Z-000000"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    items = site.get("/api/v1/jobs/damaged/snapshots?dest=1")["items"]
    assert [i["kind"] for i in items[:-1]] == ["full"]
    assert items[-1]["id"] == broken.name and "not a backwatch manifest" in items[-1]["problem"]


def test_a_job_known_only_from_its_reports_is_refused_naming_its_tool(site: Site) -> None:
    run = {"job": "pushed", "status": "success", "tool": "restic", "started_at": 1_780_000_000}
    assert site.call("POST", "/api/v1/runs", run)[0] == 201
    status, error = site.call("GET", "/api/v1/jobs/pushed/snapshots")
    assert status == 409 and "'pushed'" in error["error"]["message"]
    assert "'restic'" in error["error"]["message"]
