"""Hiding secrets in text before it is logged, stored or shown: the one masking function.

Every path that prints, stores or shows a command line, a log, a message or a ping body
masks it here (the runner, ``wrap``, ``import``, ``push --log``, the ingest services, the
pages and the API). Three kinds of secret:

* values known to be secret: environment values named like secrets (``*PASSWORD*``,
  ``*TOKEN*`` …), a job's ``password_command`` / ``passphrase_command`` — replaced wherever
  they occur (``Masker``);
* shapes that are secrets whatever their value: the password of a URL
  (``scheme://user:***@``), ``password=…``, ``--password-command …``, ``SECRET_NAME=…``,
  API tokens (``bw_…``) and ``Bearer`` credentials (``Masker`` too);
* ping keys (a job's, or the project's): they look like any other 22-character word, so
  ``ping_key_candidates`` lists the words of that shape, the store says which of them are
  keys (``services/redact.py``: one lookup), and ``hide_ping_keys`` replaces those.

Pure code: no I/O, no database.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from typing import Any

MASK = "***"
#: what a ping key is replaced with (a client's log often quotes its own ping URL)
PING_KEY_MASK = "<ping-key>"
#: a ping key's length: ``secrets.token_urlsafe(16)`` (services/jobs.py, services/pings.py)
PING_KEY_LENGTH = 22

_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)([^@\s]+)@")
_INLINE_PASSWORD = re.compile(r"((?:password|passwd|pwd|passphrase)=)([^\s&;]+)", re.IGNORECASE)
#: ``RESTIC_PASSWORD=…``, ``BORG_PASSCOMMAND='…'`` as ``env`` or ``set -x`` print them
_SECRET_ASSIGNMENT = re.compile(
    r"\b([A-Z][A-Z0-9_]*(?:PASS|SECRET|TOKEN|KEY|CREDENTIAL)[A-Z0-9_]*=)"
    r"('[^'\n]*'|\"[^\"\n]*\"|[^\s'\"]+)"
)
#: restic's and borg's options whose argument is a command that prints a password
_SECRET_OPTION = re.compile(
    r"(--(?:password-command|passcommand|password)(?:=|\s+))('[^'\n]*'|\"[^\"\n]*\"|\S+)"
)
_API_TOKEN = re.compile(r"\bbw_[A-Za-z0-9_-]{20,}")
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_KEY_SHAPE = re.compile(rf"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{{{PING_KEY_LENGTH}}}(?![A-Za-z0-9_-])")
#: a job's check UUID is a ping URL too (``/ping/<uuid>``, services/hc_api.py)
_UUID_SHAPE = re.compile(
    r"(?<![0-9A-Za-z-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"(?![0-9A-Za-z-])"
)


class Masker:
    """Replaces secrets with ``***`` in command lines and output before they are logged."""

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        self.secrets = sorted({s for s in secrets or [] if len(s) >= 3}, key=len, reverse=True)

    @classmethod
    def for_env(cls, env: dict[str, str], extra: Iterable[str] | None = None) -> Masker:
        """Values of variables named like secrets (``*PASSWORD*``, ``*TOKEN*`` …)."""
        return cls([*env_secrets(env), *(extra or [])])

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_shapes(text)


def mask_shapes(text: str) -> str:
    """``text`` with every secret of a recognisable shape masked (see the module doc)."""
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    if "=" in text:
        text = _INLINE_PASSWORD.sub(rf"\1{MASK}", text)
        text = _SECRET_ASSIGNMENT.sub(rf"\1{MASK}", text)
    if "--pass" in text:
        text = _SECRET_OPTION.sub(rf"\1{MASK}", text)
    if "bw_" in text:
        text = _API_TOKEN.sub(f"bw_{MASK}", text)
    if "earer" in text:
        text = _BEARER.sub(rf"\1{MASK}", text)
    return text


def env_secrets(env: dict[str, str]) -> list[str]:
    """Values of the variables in ``env`` named like secrets."""
    return [v for k, v in env.items() if v and _SECRET_NAME.search(k)]


def job_secrets(job: Any) -> list[str]:
    """Secrets a job's settings hold: its ``env`` values named like secrets, and the
    commands that print its repository's password (the command text is a secret too:
    ``pass show backup/restic``, or a password echoed inline)."""
    out = env_secrets(dict(getattr(job, "env", None) or {}))
    for section in ("restic", "borg"):
        options = getattr(job, section, None)
        for name in ("password_command", "passphrase_command"):
            value = getattr(options, name, None)
            if isinstance(value, str) and value.strip():
                out += command_forms(value)
    return out


def command_forms(command: str) -> list[str]:
    """A secret command as it may appear in output: as written, and as the argument list
    Python tools print when it fails (borg: ``Command '['pass', 'show', 'x']' returned
    non-zero exit status 1``)."""
    forms = [command]
    try:
        words = shlex.split(command)
    except ValueError:
        return forms
    if words:
        forms.append(str(words))
    return forms


def display_url(url: str) -> str:
    """A URL as it may be printed: the password of its user part masked."""
    return _URL_PASSWORD.sub(rf"\1{MASK}@", url) if "://" in url else url


def ping_key_candidates(*texts: str | None) -> set[str]:
    """Words in ``texts`` shaped like a ping key; the store says which of them are keys."""
    found: set[str] = set()
    for text in texts:
        if text and len(text) >= PING_KEY_LENGTH:
            found.update(_KEY_SHAPE.findall(text))
            found.update(_UUID_SHAPE.findall(text))
    return found


def hide_ping_keys(text: str, keys: Iterable[str]) -> str:
    """``text`` with each of ``keys`` replaced by ``<ping-key>``."""
    for key in keys:
        if key and key in text:
            text = text.replace(key, PING_KEY_MASK)
    return text
