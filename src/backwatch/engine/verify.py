"""``verify``: re-read the files of a snapshot (all, or a random sample) and compare each
one's BLAKE3 hash and size with the manifest. The files an incremental took unchanged
from its bases are read from the bases' archives, so a good verify means a good restore.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import IO

from backwatch.engine.archive import ArchiveDamaged, copy_hashed, read_held
from backwatch.engine.manifest import Entry, Manifest
from backwatch.engine.repository import Repository
from backwatch.errors import BackwatchError, InvalidInput


@dataclass
class Report:
    snapshot: str
    checked: int = 0
    bytes: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "ok": self.ok}


def parse_sample(value: str | None, *, field: str = "--sample") -> float | None:
    """'5%' → 0.05 (None: everything); a clear error, naming ``field``, for anything else."""
    if value is None:
        return None
    text = value.strip().rstrip("%")
    try:
        share = float(text) / 100
    except ValueError:
        raise _bad_sample(field, f"must be a percentage such as 10%, not {value!r}") from None
    if not 0 < share <= 1:
        raise _bad_sample(field, f"must be between 0% and 100%, not {value!r}")
    return share


def _bad_sample(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{field} {problem}", details=[{"field": field, "problem": problem}])


def verify(
    repo: Repository, manifest: Manifest, *, sample: float | None = None, seed: int | None = None
) -> Report:
    files = manifest.files()
    if sample is not None and files:
        count = max(1, round(len(files) * sample))
        files = random.Random(seed).sample(files, count)
    report = Report(manifest.id)
    by_holder: dict[str, dict[str, Entry]] = {}
    for entry in files:
        by_holder.setdefault(entry.snapshot or manifest.id, {})[entry.path] = entry
    for holder, wanted in sorted(by_holder.items()):
        _check_archive(repo, holder, wanted, report)
    return report


def _check_archive(repo: Repository, holder: str, wanted: dict[str, Entry], report: Report) -> None:
    def check(entry: Entry, data: IO[bytes]) -> None:
        digest, size = copy_hashed(data)
        report.checked += 1
        report.bytes += size
        if size != entry.size or digest != entry.blake3:
            report.problems.append({"path": entry.path, "problem": f"content differs ({holder})"})

    try:
        found = read_held(repo, holder, wanted, check)
        missing = f"missing from the archive of {holder}"
    except ArchiveDamaged as exc:
        found, missing = exc.found, "unreadable: " + exc.message
    except BackwatchError as exc:
        found, missing = set(), exc.message
    for path in sorted(set(wanted) - found):
        report.problems.append({"path": path, "problem": missing})
