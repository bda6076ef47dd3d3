"""Where the audit log lives when ``BURNLINK_AUDIT_STORE`` is unset.

- A SQLite store: a file of its own beside the store's, ``<name>-audit<suffix>``
  (``burnlink.db`` → ``burnlink-audit.db``). Two files take two writer locks, so the sealer's
  appends never wait for the requests' writes, nor they for it (docs/operations.md, stop 41).
  A store file that already holds an audit log (made before this default) keeps it: moving a
  chain would break it.
- PostgreSQL or memory: the store's own database.
- Redis (which cannot hold it): ``audit.db`` in the key directory.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Final

__all__ = ["AUDIT_SUFFIX", "default_audit_url"]

AUDIT_SUFFIX: Final = "-audit"
"""Added to a SQLite store file's stem to name its audit log's file."""

_SQL_SCHEMES: Final = frozenset({"postgresql", "postgres", "memory"})

_HOLDS_LOG: dict[Path, bool] = {}
"""Store files already probed (``_holds_audit_log``): a file's answer never changes once
read, since the audit log is only ever created where this module says."""


def default_audit_url(store_url: str, key_dir: str) -> str:
    """The audit log's URL for the store at ``store_url`` (see the module docstring)."""
    scheme, _, rest = store_url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if rest == ":memory:" or _holds_audit_log(Path(rest).expanduser()):
            return store_url
        store = Path(rest)
        return f"sqlite://{store.with_name(store.stem + AUDIT_SUFFIX + store.suffix)}"
    if scheme in _SQL_SCHEMES:
        return store_url
    return f"sqlite://{Path(key_dir).expanduser() / 'audit.db'}"


def _holds_audit_log(path: Path) -> bool:
    """Whether the SQLite file at ``path`` holds an audit log (its state table), read without
    creating or changing anything. A file that cannot be read counts as holding one, and is
    read again next time: the log then stays where it always was until the file can tell."""
    path = path.absolute()
    known = _HOLDS_LOG.get(path)
    if known is not None:
        return known
    if not path.exists():
        return False  # a new store, whose log goes beside it from the start
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_state'"
            ).fetchall()
    except sqlite3.Error:
        return True
    _HOLDS_LOG[path] = bool(found)
    return bool(found)
