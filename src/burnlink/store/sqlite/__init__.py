"""The embedded SQLite backend: its store, schema, row codecs and the worker thread that owns
each connection (also used by the SQLite audit log)."""

from burnlink.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
