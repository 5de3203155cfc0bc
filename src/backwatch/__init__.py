"""backwatch: a self-hosted hub that knows whether your backups work."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``backwatch.__version__``: the installed distribution's version (pyproject.toml is
    its one source), read when first asked for: ``push`` does not pay for the lookup."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("backwatch")
        except PackageNotFoundError:  # run from a source tree that was never installed
            value = "0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'backwatch' has no attribute {name!r}")
