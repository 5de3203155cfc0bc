"""The one masking function (backwatch/masking.py) and the allowed-hosts rule, as pure code."""

from __future__ import annotations

import pytest

from backwatch.masking import (
    Masker,
    display_url,
    hide_ping_keys,
    job_secrets,
    ping_key_candidates,
)
from backwatch.settings import JobSettings
from backwatch.web.hosts import AllowedHosts, host_name


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("postgresql://app:s3cret@db/app", "postgresql://app:***@db/app"),
        ("mysqldump --password=abc123 db", "mysqldump --password=*** db"),
        ("restic --password-command 'pass show x' backup", "restic --password-command *** backup"),
        ('borg --passcommand="pass show y" list', "borg --passcommand=*** list"),
        ("RESTIC_PASSWORD=hunter2 restic backup", "RESTIC_PASSWORD=*** restic backup"),
        ("export B2_ACCOUNT_KEY='k 1'", "export B2_ACCOUNT_KEY=***"),
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer ***"),
        ("token bw_" + "A" * 43 + " used", "token bw_*** used"),
        # nothing secret: left alone
        ("restic --password-file /etc/restic.pass backup", None),
        ("copied 12 files to /srv/IMG_20240101_123456789.jpg, size=12", None),
        ("https://example.org/path?q=1", None),
    ],
)
def test_secret_shapes_are_masked(line: str, shown: str | None) -> None:
    assert Masker()(line) == (line if shown is None else shown)


def test_known_values_are_masked_longest_first() -> None:
    mask = Masker.for_env({"MY_TOKEN": "abc", "MY_TOKEN_LONG": "abcdef", "PATH": "/usr/bin"})
    assert mask("abcdef abc /usr/bin") == "*** *** /usr/bin"


def test_a_jobs_password_commands_are_secrets_in_both_forms() -> None:
    job = JobSettings.model_validate(
        {
            "id": "photos",
            "tool": "borg",
            "env": {"BORG_RSH": "ssh -i key", "API_SECRET": "s3"},
            "borg": {"repository": "/r", "passphrase_command": "vault get 'borg pw'"},
        }
    )
    secrets = job_secrets(job)
    assert "vault get 'borg pw'" in secrets and "['vault', 'get', 'borg pw']" in secrets
    assert "s3" in secrets and "ssh -i key" not in secrets
    out = Masker(secrets)("Command '['vault', 'get', 'borg pw']' returned non-zero exit status 1")
    assert "borg pw" not in out


def test_ping_key_candidates_and_hiding() -> None:
    key = "Nj4HYUMb0UiqnPjAa_IqKg"
    text = f"curl https://hub/ping/{key}/start; x{key}; {key[:-1]}"
    assert ping_key_candidates(text) == {key}
    assert hide_ping_keys(text, {key}).startswith("curl https://hub/ping/<ping-key>/start")


def test_display_url_hides_only_the_password() -> None:
    assert display_url("http://me:pw@host:5001/x") == "http://me:***@host:5001/x"
    assert display_url("http://host:5001") == "http://host:5001"


@pytest.mark.parametrize(
    ("header", "name"),
    [("[::1]:5001", "::1"), ("::1", "::1"), ("Host.LAN.:80", "host.lan"), ("10.0.0.1", "10.0.0.1")],
)
def test_host_names_are_read_like_a_browser_sends_them(header: str, name: str) -> None:
    assert host_name(header) == name


def test_allowed_hosts_rule() -> None:
    hosts = AllowedHosts(bind_host="0.0.0.0", base_url="https://u:p@backups.example.org/bw")
    assert hosts.allows("backups.example.org") and hosts.allows("localhost:5001")
    assert hosts.allows("[fe80::1]:5001") and hosts.allows(None)
    assert not hosts.allows("0.0.0.0.attacker.example") and not hosts.allows("testserver")
