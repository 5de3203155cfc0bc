"""The built-in snapshot engine (``tool = "builtin"``, docs/engine.md).

Plain files a user can restore without backwatch: per snapshot a zstd-compressed tar of
the files it holds and a JSON manifest of every path (mode, mtime, size, BLAKE3 hash, the
snapshot holding its bytes). One module per concern:

    repository  a destination directory: list, lock, commit atomically, remove
    manifest    the manifest format; unsafe paths refused when read
    scan        walking sources, what changed since a snapshot
    snapshot    taking a snapshot (to several destinations in parallel)
    tarwrite    the archive's tar stream, as tarfile writes it, at a fraction of its cost
    archive     reading files back out of an archive, hashed
    restore     into a target, never outside it, with conflict rules
    verify      re-hashing all or a sample
    forget      retention that keeps every kept snapshot's bases
"""
