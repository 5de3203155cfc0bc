"""Manifests of the built-in engine: a path that could leave a restore target is refused."""

from __future__ import annotations

import json

import pytest

from backwatch.engine.manifest import FILE, FORMAT, Entry, Manifest, check_path, parse_manifest
from backwatch.errors import MalformedInput


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a\0b", "a\\..\\b"]
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(MalformedInput, match="unsafe path"):
        check_path(path)


@pytest.mark.parametrize("path", ["a", "src/a b.txt", "src/ü/..x", "src/.hidden"])
def test_safe_paths_pass(path: str) -> None:
    assert check_path(path) == path


def _manifest(path: str) -> str:
    m = Manifest("s1", 1.0, "full", None, [], [Entry(path, FILE, 0o644, 1.0, 0, 1, "h", "s1")])
    return m.to_json()


def test_a_round_trip_keeps_every_field() -> None:
    text = _manifest("src/a")
    parsed = parse_manifest(text, "m.json")
    assert parsed.entries[0] == Entry("src/a", FILE, 0o644, 1.0, 0, 1, "h", "s1")
    assert json.loads(text)["format"] == FORMAT


def test_a_crafted_manifest_names_the_file_and_the_path() -> None:
    text = _manifest("src/a").replace('"src/a"', '"../../etc/cron.d/x"')
    with pytest.raises(MalformedInput, match=r"m\.json: unsafe path .*\.\./\.\./etc"):
        parse_manifest(text, "m.json")


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"format": "other", "entries": []}'])
def test_anything_else_is_not_a_manifest(text: str) -> None:
    with pytest.raises(MalformedInput, match=r"m\.json"):
        parse_manifest(text, "m.json")


def test_an_unknown_format_version_is_refused() -> None:
    text = _manifest("src/a").replace(FORMAT, "backwatch-snapshot/9")
    with pytest.raises(MalformedInput, match="unknown format"):
        parse_manifest(text, "m.json")


def test_snapshot_ids_of_one_second_sort_in_the_order_they_were_taken() -> None:
    from backwatch.engine.repository import new_snapshot_id

    ids = [new_snapshot_id(1_780_000_000 + ms / 1000) for ms in (0, 1, 250, 999, 1000)]
    assert ids == sorted(ids)
    assert ids[2].startswith("20260528T202640.250Z-")
