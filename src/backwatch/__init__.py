"""backwatch: a self-hosted hub that knows whether your backups work."""

__version__ = "0.1.0"
