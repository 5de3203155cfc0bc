"""The snapshot's tar writer writes exactly what ``tarfile`` writes (PAX format).

Archives made before the writer existed were written by ``tarfile``; anything a user (or
an older backwatch) can do with those must keep working, so the writer is held to the
same bytes: member by member (headers of any name, link, size and time, including those
it leaves to tarfile), and as a whole stream (data, padding, end of archive) whatever the
buffer size, and a file that shrinks or grows while it is read.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from backwatch.engine.tarwrite import DIRTYPE, REGTYPE, SYMTYPE, TarWriter, header

NAMES = st.text(alphabet=st.sampled_from("ab/._- ü€漢\udcff"), min_size=1, max_size=120)
TIMES = st.one_of(
    st.floats(min_value=-1e3, max_value=1e11, allow_nan=False),
    st.integers(min_value=-5, max_value=2**35),
    st.sampled_from([0.5, 2.5, 8.0**11 - 0.5, 8.0**11 - 0.6, 1763790513.1234567, 1e-7]),
)
SIZES = st.one_of(st.integers(0, 2**40), st.sampled_from([0, 511, 512, 8**11 - 1, 8**11]))


def _tarfile(
    name: str, kind: bytes, mode: int, mtime: float, size: int, link: str, owner: tuple[int, int]
) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, link
    info.uid, info.gid = owner
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


IDS = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1000, 8**7 - 1, 8**7, 65534]))


@settings(max_examples=400, deadline=None)
@given(
    name=NAMES,
    kind=st.sampled_from([REGTYPE, DIRTYPE, SYMTYPE]),
    mode=st.integers(0, 0o7777),
    mtime=TIMES,
    size=SIZES,
    link=st.one_of(st.just(""), NAMES),
    owner=st.tuples(IDS, IDS),
)
def test_every_header_is_the_one_tarfile_writes(
    name: str, kind: bytes, mode: int, mtime: float, size: int, link: str, owner: tuple[int, int]
) -> None:
    size = size if kind == REGTYPE else 0
    link = link if kind == SYMTYPE else ""
    assert header(name, kind, mode, mtime, size, link, owner) == _tarfile(
        name, kind, mode, mtime, size, link, owner
    )


def _members(root: Path) -> list[tuple[str, bytes, bytes, int, float]]:
    """(name, kind, content, mode, mtime) of awkward members; the files written under root."""
    members: list[tuple[str, bytes, bytes, int, float]] = [("top", DIRTYPE, b"", 0o755, 1.5)]
    sizes = [0, 1, 511, 512, 513, 1000, 1024, 1025, 3000, 5000]
    for i, size in enumerate(sizes):
        members.append((f"top/f{i}-{size}", REGTYPE, os.urandom(size), 0o644, 1e9 + i / 7))
    members.append(("top/" + "long-" * 30, REGTYPE, b"long name", 0o600, 17))
    members.append(("top/ünï", REGTYPE, b"unicode", 0o640, 1.25))
    members.append(("top/link", SYMTYPE, b"", 0o777, 2.0))
    for name, kind, data, _, _ in members:
        if kind == REGTYPE:
            path = root / name.replace("/", "_")
            path.write_bytes(data)
    return members


def _expected(members: list[tuple[str, bytes, bytes, int, float]]) -> bytes:
    out = io.BytesIO()
    with tarfile.TarFile(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode, mtime in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, mtime
            if kind == SYMTYPE:
                info.linkname = "f1-1"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if kind == REGTYPE else None)
    return out.getvalue()


def _written(root: Path, members: list[tuple[str, bytes, bytes, int, float]], size: int) -> bytes:
    out = io.BytesIO()
    tar = TarWriter(out, size)
    for name, kind, data, mode, mtime in members:
        if kind != REGTYPE:
            tar.add(name, kind, mode, mtime, "f1-1" if kind == SYMTYPE else "")
            continue
        fd = os.open(root / name.replace("/", "_"), os.O_RDONLY)
        try:
            digest, short = tar.add_file(name, mode, mtime, len(data), fd)
        finally:
            os.close(fd)
        assert (digest, short) == (blake3(data).hexdigest(), False)
    tar.close()
    return out.getvalue()


def test_the_stream_is_tarfiles_whatever_the_buffer_size(tmp_path: Path) -> None:
    members = _members(tmp_path)
    expected = _expected(members)
    # buffers smaller than a header, than a file, at block boundaries, and roomy
    for size in (512, 1000, 1536, 2048, 4096, 1 << 20):
        assert _written(tmp_path, members, size) == expected, size


def test_a_file_that_shrank_is_padded_with_zeros_and_one_that_grew_is_cut(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 700)
    for size in (1000, 300):  # the walk saw 1000 bytes (it shrank) or 300 (it grew)
        for buffer in (512, 4096):
            out = io.BytesIO()
            tar = TarWriter(out, buffer)
            fd = os.open(path, os.O_RDONLY)
            digest, short = tar.add_file("f", 0o644, 5.0, size, fd)
            os.close(fd)
            tar.close()
            archived = (b"x" * 700 + bytes(300))[:size]
            assert short == (size > 700)
            assert digest == blake3(archived).hexdigest()
            with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as back:
                member = back.extractfile("f")
                assert member is not None and member.read() == archived


def test_progress_counts_file_bytes_only(tmp_path: Path) -> None:
    members = _members(tmp_path)
    seen: list[int] = []
    out = io.BytesIO()
    tar = TarWriter(out, 2048, seen.append)
    for name, kind, data, mode, mtime in members:
        if kind == REGTYPE:
            fd = os.open(tmp_path / name.replace("/", "_"), os.O_RDONLY)
            tar.add_file(name, mode, mtime, len(data), fd)
            os.close(fd)
    tar.close()
    assert sum(seen) == sum(len(m[2]) for m in members)
