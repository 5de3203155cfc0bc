"""Reading the files a snapshot holds back out of its archive, checking each one's hash.

Restore and verify both come here. Members are looked up by the paths of the manifest
(already checked safe), never by the names the tar itself gives, so a crafted archive
cannot make us write anywhere else. A damaged archive (bad zstd frame, truncated tar)
ends the reading with ``ArchiveDamaged``, which names the archive; the caller reports the
files it did not get.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import IO

import zstandard
from blake3 import blake3

from backwatch.engine.manifest import Entry
from backwatch.engine.repository import Repository
from backwatch.errors import MalformedInput

_CHUNK = 1 << 20


class ArchiveDamaged(MalformedInput):
    """The archive of a snapshot could not be read to its end; ``found``: the paths
    handed out before that."""

    def __init__(self, message: str, *, found: set[str]) -> None:
        super().__init__(message)
        self.found = found


def read_held(
    repo: Repository,
    snapshot_id: str,
    wanted: dict[str, Entry],
    each: Callable[[Entry, IO[bytes]], None],
) -> set[str]:
    """Call ``each(entry, its bytes)`` for every wanted path found in the archive of
    ``snapshot_id``; the paths found. The bytes are read inside, so damage found while
    ``each`` reads them ends here too, as ``ArchiveDamaged``."""

    path = repo.archive(snapshot_id)
    found: set[str] = set()
    try:
        with open(path, "rb") as raw:
            stream = zstandard.ZstdDecompressor().stream_reader(raw)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    entry = wanted.get(member.name)
                    data = tar.extractfile(member) if member.isfile() else None
                    if entry is not None and data is not None:
                        found.add(entry.path)
                        each(entry, data)
    except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
        raise ArchiveDamaged(f"archive {path} is damaged: {exc}", found=found) from None
    except OSError as exc:
        raise ArchiveDamaged(f"cannot read {path}: {exc}", found=found) from None
    return found


def copy_hashed(data: IO[bytes], out: IO[bytes] | None = None) -> tuple[str, int]:
    """(BLAKE3 hex digest, size) of ``data``, copied into ``out`` when given."""
    digest = blake3()
    size = 0
    while chunk := data.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest(), size
