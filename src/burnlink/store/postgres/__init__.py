"""The PostgreSQL backend: its store, schema, SQL, procedures and the connection pool (also
used by the PostgreSQL audit log)."""

from burnlink.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
