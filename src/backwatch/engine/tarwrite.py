"""Writing the tar stream of a snapshot: the very bytes ``tarfile`` writes in PAX format,
without its cost per member.

``tarfile.TarFile.addfile`` spends time on every member (a copy of the TarInfo, a dict
of its fields, two headers built field by field) and hands zstd one small write per
header, file and padding: more than reading, hashing and compressing a small file. Here
the members of a snapshot (directories, regular files, symlinks with ASCII names of up to
100 characters, sizes under 8 GiB) get their headers from a template, and everything goes
through one reused buffer that zstd gets a megabyte at a time. Any other member (a long
or non-ASCII name, a huge file, a time before 1970) gets its header from ``tarfile``
itself. Either way the stream is byte for byte what ``tarfile`` would have written (a test
holds it to that), so the format, and a restore with plain ``tar``, stay as they were.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from typing import Protocol

from blake3 import blake3

BLOCK = 512
RECORD = 20 * BLOCK  # tarfile pads the end of the archive to a whole record
REGTYPE, DIRTYPE, SYMTYPE = b"0", b"5", b"2"

_NUL = b"\0"
_ZEROS = bytes(RECORD)
#: magic, version, uname, gname, devmajor, devminor, prefix and padding: the same for all
_TAIL = b"ustar\x0000" + bytes(BLOCK - 265)
#: what the checksum counts besides the name, numbers, type and link: its own field (as
#: spaces) and the tail
_FIXED_SUM = 8 * ord(" ") + sum(_TAIL)
_MAX_SIZE = 8**11  # what the 12-byte octal fields hold; beyond it, a pax record
_MAX_ID = 8**7  # what the 8-byte uid and gid fields hold


class Sink(Protocol):
    def write(self, data: memoryview | bytes, /) -> int: ...


def header(
    name: str,
    kind: bytes,
    mode: int,
    mtime: float,
    size: int = 0,
    link: str = "",
    owner: tuple[int, int] = (0, 0),
) -> bytes:
    """The header blocks of one member, as ``TarInfo.tobuf(PAX_FORMAT)`` gives them.
    ``owner``: (uid, gid), by number (no user or group names)."""
    if kind == DIRTYPE and name[-1:] != "/":
        name += "/"
    exact = isinstance(mtime, float)
    when = round(mtime) if exact else int(mtime)
    uid, gid = owner
    if (
        len(name) <= 100
        and len(link) <= 100
        and name.isascii()
        and link.isascii()
        and 0 <= size < _MAX_SIZE
        and 0 <= when < _MAX_SIZE
        and 0 <= uid < _MAX_ID
        and 0 <= gid < _MAX_ID
    ):
        ustar = _ustar(name.encode(), mode & 0o7777, size, when, kind, link.encode(), uid, gid)
        if exact:  # the exact time goes in a pax record before it, as tarfile does
            return _pax_mtime(str(mtime).encode()) + ustar
        return ustar
    return _tarfile_header(name, kind, mode, mtime, size, link, owner)


def _ustar(
    name: bytes, mode: int, size: int, mtime: int, kind: bytes, link: bytes, uid: int, gid: int
) -> bytes:
    """One ustar header block: name, mode, uid, gid, size, mtime, checksum, type, link."""
    numbers = b"%07o\x00%07o\x00%07o\x00%011o\x00%011o\x00" % (mode, uid, gid, size, mtime)
    checksum = _FIXED_SUM + sum(name) + sum(numbers) + kind[0] + sum(link)
    return b"".join(
        (
            name.ljust(100, _NUL),
            numbers,
            b"%06o\0 " % checksum,
            kind,
            link.ljust(100, _NUL),
            _TAIL,
        )
    )


#: by the length of the mtime value: (the pax header block and the record up to the
#: value, the rest of the record and of its block)
_pax_parts: dict[int, tuple[bytes, bytes]] = {}


def _pax_mtime(value: bytes) -> bytes:
    """A pax extended header holding one ``mtime`` record, and its payload block."""
    parts = _pax_parts.get(len(value))
    if parts is None:
        # "<length> mtime=<value>\n": the length counts its own digits (tarfile's loop)
        bare = len(value) + 8
        length = previous = 0
        while (length := bare + len(str(previous))) != previous:
            previous = length
        pax = _ustar(b"././@PaxHeader", 0, length, 0, b"x", b"", 0, 0)
        parts = (pax + b"%d mtime=" % length, b"\n" + bytes(BLOCK - length))
        _pax_parts[len(value)] = parts
    return parts[0] + value + parts[1]


def _tarfile_header(
    name: str, kind: bytes, mode: int, mtime: float, size: int, link: str, owner: tuple[int, int]
) -> bytes:

    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, link
    info.uid, info.gid = owner
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


class TarWriter:
    """A tar stream into ``out`` through one buffer of ``size`` bytes: ``out`` gets whole
    buffers (a view of this one: it must copy what it keeps before ``write`` returns)."""

    def __init__(
        self, out: Sink, size: int = 1 << 20, progress: Callable[[int], None] | None = None
    ) -> None:
        self.out, self.progress = out, progress
        self.view = memoryview(bytearray(size))
        self.pos = 0  # bytes in the buffer
        self.flushed = 0  # bytes handed to out
        self.data = 0  # file bytes in the buffer (reported by flush)

    def flush(self) -> None:
        """Hand the buffer on (and tell ``progress`` the file bytes it held)."""
        if self.pos:
            self.out.write(self.view[: self.pos])
            self.flushed += self.pos
        if self.data and self.progress is not None:
            self.progress(self.data)
        self.pos = self.data = 0

    def _put(self, data: bytes) -> None:
        end = self.pos + len(data)
        if end > len(self.view):
            self.flush()
            end = len(data)
            if end > len(self.view):
                self.out.write(data)
                self.flushed += end
                return
        self.view[self.pos : end] = data
        self.pos = end

    def add(
        self,
        name: str,
        kind: bytes,
        mode: int,
        mtime: float,
        link: str = "",
        owner: tuple[int, int] = (0, 0),
    ) -> None:
        """A directory or symlink: its header only."""
        self._put(header(name, kind, mode, mtime, 0, link, owner))

    def add_file(
        self,
        name: str,
        mode: int,
        mtime: float,
        size: int,
        fd: int,
        owner: tuple[int, int] = (0, 0),
    ) -> tuple[str, bool]:
        """A regular file of ``size`` bytes read from ``fd``: (BLAKE3 hex digest of the bytes
        written, whether the file held fewer). The bytes are exactly ``size``: zeros make up
        for a file that shrank, a file that grew is cut, as tar does."""
        self._put(header(name, REGTYPE, mode, mtime, size, "", owner))
        view, pos = self.view, self.pos
        padded = size + -size % BLOCK
        if pos + padded <= len(view):  # it fits: one read, one hash, no call per chunk
            chunk = view[pos : pos + size]
            got = _read_into(fd, chunk) if size else 0
            if got < size:
                chunk[got:] = bytes(size - got)
            view[pos + size : pos + padded] = _ZEROS[: padded - size]
            self.pos = pos + padded
            self.data += size
            return blake3(chunk).hexdigest(), got < size
        digest = blake3()
        left, short = size, False
        while left:
            if self.pos == len(view):
                self.flush()
            n = min(left, len(view) - self.pos)
            chunk = view[self.pos : self.pos + n]
            got = 0 if short else _read_into(fd, chunk)
            if got < n:
                chunk[got:] = bytes(n - got)
                short = True
            digest.update(chunk)
            self.pos += n
            self.data += n
            left -= n
        if padded > size:
            self._put(_ZEROS[: padded - size])
        return digest.hexdigest(), short

    def close(self) -> None:
        """End the archive (two zero blocks, then zeros to a whole record, as tarfile
        does) and hand everything on."""
        self._put(_ZEROS[: 2 * BLOCK])
        tail = (self.flushed + self.pos) % RECORD
        if tail:
            self._put(_ZEROS[: RECORD - tail])
        self.flush()


def _read_into(fd: int, view: memoryview) -> int:
    """Bytes read into ``view``: all of it, or fewer at the end of the file."""
    got = os.readv(fd, [view])
    while got < len(view):
        more = os.readv(fd, [view[got:]])
        if not more:
            break
        got += more
    return got
