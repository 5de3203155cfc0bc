"""The archive a snapshot writes is plain tar + zstd, whatever the sizes of its files.

The archive is written in chunks (a file is read into one reused buffer, hashed and
handed to zstd a chunk at a time): files that span several chunks, end mid-chunk or are
empty must all come back byte for byte with only ``zstd`` and ``tar``, and the manifest's
hash must be the hash of those bytes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from blake3 import blake3

from backwatch.engine.repository import Repository
from backwatch.engine.scan import sources_for
from backwatch.engine.snapshot import SUCCESS, Request, take_snapshot
from tests.conftest import need_tool

SIZES = [0, 1, 511, 512, 513, (1 << 20) - 1, 1 << 20, (3 << 20) + 77]


def _tree(root: Path) -> dict[str, bytes]:
    """Files of awkward sizes, and many small ones (more headers than data)."""
    files = {f"sizes/s{size}.bin": os.urandom(size) for size in SIZES}
    files.update({f"small/n{i:03}.txt": b"line %d\n" % i * (i % 7) for i in range(300)})
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_files_of_any_size_come_back_with_plain_zstd_and_tar(tmp_path: Path) -> None:
    zstd, tar = need_tool("zstd"), need_tool("tar")
    source = tmp_path / "data"
    files = _tree(source)
    (outcome,) = take_snapshot(Request(sources_for([str(source)]), [Repository(tmp_path / "d")]))
    assert outcome.status == SUCCESS

    archive = next((tmp_path / "d" / "snapshots").glob("*/data.tar.zst"))
    out = tmp_path / "out"
    out.mkdir()
    unpacked = subprocess.run([zstd, "-dc", str(archive)], check=True, capture_output=True)
    subprocess.run([tar, "-xf", "-", "-C", str(out)], input=unpacked.stdout, check=True)
    manifest = Repository(tmp_path / "d").latest()
    assert manifest is not None
    hashes = {e.path: e.blake3 for e in manifest.files()}
    for rel, data in files.items():
        assert (out / "data" / rel).read_bytes() == data, rel
        assert hashes[f"data/{rel}"] == blake3(data).hexdigest(), rel
