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
from backwatch.engine.snapshot import SUCCESS, Hooks, Request, take_snapshot
from backwatch.engine.verify import verify
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


def test_the_archive_is_the_tar_stream_tarfile_writes(tmp_path: Path) -> None:
    """The format of snapshots made before the engine framed its own tar stream: the
    decompressed archive is, byte for byte, what ``tarfile`` writes for the manifest's
    entries."""
    import io
    import tarfile

    import zstandard

    source = tmp_path / "data"
    files = _tree(source)
    (source / "link").symlink_to("small/n001.txt")
    (source / "empty").mkdir()
    take_snapshot(Request(sources_for([str(source)]), [Repository(tmp_path / "d")]))
    manifest = Repository(tmp_path / "d").latest()
    assert manifest is not None

    expected = io.BytesIO()
    with tarfile.TarFile(fileobj=expected, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in manifest.entries:
            info = tarfile.TarInfo(entry.path)
            info.mode, info.mtime = entry.mode, entry.mtime
            info.uid, info.gid = entry.owner
            if entry.type == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.type == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target or ""
                tar.addfile(info)
            else:
                data = files[entry.path.removeprefix("data/")]
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    archive = next((tmp_path / "d" / "snapshots").glob("*/data.tar.zst"))
    with open(archive, "rb") as f:
        written = zstandard.ZstdDecompressor().stream_reader(f).read()
    assert written == expected.getvalue()


class _Meddler(Hooks):
    """Changes files between the scan and the archive: one shrinks, one grows."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def phase(self, name: str, event: str, status: str | None = None) -> None:
        if (name, event) == ("archive", "start"):
            os.truncate(self.source / "sizes" / f"s{1 << 20}.bin", 1000)
            with open(self.source / "sizes" / "s513.bin", "ab") as f:
                f.write(b"more")


def test_a_file_changed_while_archived_is_named_and_the_archive_stays_whole(
    tmp_path: Path,
) -> None:
    tar = need_tool("tar")
    source = tmp_path / "data"
    files = _tree(source)
    (outcome,) = take_snapshot(
        Request(sources_for([str(source)]), [Repository(tmp_path / "d")]), _Meddler(source)
    )
    assert outcome.status == SUCCESS
    assert sorted(p.split("/")[-1].split(":")[0] for p in outcome.problems) == [
        "s1048576.bin",
        "s513.bin",
    ]
    archive = next((tmp_path / "d" / "snapshots").glob("*/data.tar.zst"))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([tar, "--zstd", "-xf", str(archive), "-C", str(out)], check=True)
    # the sizes the scan saw: the shrunk file made up with zeros, the grown one cut
    shrunk = files[f"sizes/s{1 << 20}.bin"][:1000] + bytes((1 << 20) - 1000)
    assert (out / "data" / "sizes" / f"s{1 << 20}.bin").read_bytes() == shrunk
    assert (out / "data" / "sizes" / "s513.bin").read_bytes() == files["sizes/s513.bin"]
    repo = Repository(tmp_path / "d")
    report = verify(repo, repo.resolve("latest"))
    assert report.ok and report.checked == len(files)
