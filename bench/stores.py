"""The stores behind the contenders, and the size mode's bulk loading and footprint.

Redis is a private ``redis-server`` on a free loopback port, configured as docs/storage.md
recommends (append-only file, ``everysec``, ``noeviction``), unless ``--redis-url`` names
another. PostgreSQL is a fresh database on the server ``--postgres-url`` names, dropped at the
end. SQLite is a file in the run directory.

Bulk loading clones one real secret (created through the app, so every column and key is
what the current code writes) server-side: ``INSERT … SELECT`` over a generated series in SQL,
``RESTORE`` of the secret's dumped keys in a Lua loop in Redis. It never hard-codes a schema,
so it keeps working while the schema grows; a peek through the real store afterwards checks
that the clones read as live secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from bench.procs import free_port, launch, stop_group

ID_COLUMNS = ("id", "receipt_id", "secret_id")
BATCH = 50_000
# Every load comes from one address (127.0.0.1). Rate limiting stays on, as shipped: each
# request is counted in the store, with limits far above what the load generator sends.
RATE_LIMITS_WIDE = {
    f"BURNLINK_RATE_LIMIT_{name}": "1000000000/minute"
    for name in ("CREATE", "REVEAL", "VERIFY", "FAILURES", "SECRET_FAILURES")
}


# -- servers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis(work: Path) -> Iterator[str]:
    """A redis-server of our own on a free port, with an append-only file; yields its URL."""
    directory = work / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
        "--maxmemory-policy", "noeviction", "--protected-mode", "yes",
    ]  # fmt: skip
    process = launch(command, log=work / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        stop_group(process)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database on ``server_url``'s server, dropped afterwards; yields its URL."""
    name = f"burnlink_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_prefix_url(redis_url: str) -> tuple[str, str]:
    """A store URL on ``redis_url`` with a fresh key prefix, and that prefix."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    return f"{redis_url}?prefix={prefix}", prefix


def delete_redis_prefix(redis_url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (for a Redis the benchmark does not own)."""
    client = redis.Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


# -- a template secret, through the real app -------------------------------------------------


async def _create_through_app(store_url: str, ttl: int) -> str:
    from burnlink.config import load_settings
    from burnlink.web.app import create_app

    settings = load_settings(store=store_url)  # rate limits: off, from the environment
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
    ):
        response = await http.post(
            "/api/v1/secrets", json={"secret": "bench: correct horse battery staple", "ttl": ttl}
        )
        response.raise_for_status()
        secret_id: str = response.json()["id"]
        return secret_id


def create_template(store_url: str, ttl: int) -> str:
    """Create one secret with ``ttl`` through the app on ``store_url``; return its id."""
    return asyncio.run(_create_through_app(store_url, ttl))


def clone_id(prefix: str, number: int) -> str:
    """The id of clone ``number``: 22 characters, like a real id."""
    return f"{prefix}{number:0{22 - len(prefix)}d}"


# -- cloning ---------------------------------------------------------------------------------


def clone_sqlite(path: Path, template: str, prefix: str, count: int) -> None:
    """Copy every row keyed by ``template`` ``count`` times, ids ``clone_id(prefix, n)``."""
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        con.execute("PRAGMA foreign_keys = OFF")
        con.execute("PRAGMA synchronous = OFF")
        tables = [
            row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        plans: list[tuple[str, list[str], str]] = []
        for table in tables:
            columns = [row[1] for row in con.execute(f'PRAGMA table_info("{table}")')]
            key = next((c for c in ID_COLUMNS if c in columns), None)
            if key is not None:
                plans.append((table, columns, key))
        width = 22 - len(prefix)
        for start in range(0, count, BATCH):
            stop = min(start + BATCH, count)
            con.execute("BEGIN")
            for table, columns, key in plans:
                select = ", ".join(
                    f"printf('%s%0{width}d', ?, n.i)" if c == key else f't."{c}"' for c in columns
                )
                names = ", ".join(f'"{c}"' for c in columns)
                con.execute(
                    "WITH RECURSIVE n(i) AS"  # noqa: S608 - names come from the catalog
                    " (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
                    f' INSERT INTO "{table}" ({names}) SELECT {select} FROM "{table}" AS t, n'
                    f' WHERE t."{key}" = ?',
                    (start, stop, prefix, template),
                )
            con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def clone_postgres(url: str, template: str, prefix: str, count: int) -> None:
    """Like ``clone_sqlite``, for every ``burnlink_*`` table keyed by the secret id."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name LIKE 'burnlink%%'"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
        columns: dict[str, list[str]] = {}
        text_columns: set[tuple[str, str]] = set()
        for table, column, data_type in rows:
            columns.setdefault(table, []).append(column)
            if data_type in ("text", "character varying"):
                text_columns.add((table, column))
        # Tables keyed by a secret id (text); other tables (audit state, counters) are not.
        plans = [
            (table, cols, key)
            for table, cols in columns.items()
            for key in [next((c for c in ID_COLUMNS if (table, c) in text_columns), None)]
            if key is not None
        ]
        width = 22 - len(prefix)
        for start in range(0, count, BATCH):
            stop = min(start + BATCH, count) - 1
            with conn.transaction():
                # Clones are inserted table by table; foreign keys are checked by triggers
                # that a superuser may switch off for the load.
                conn.execute("SET LOCAL session_replication_role = replica")
                for table, cols, key in plans:
                    select = ", ".join(
                        f"%(prefix)s || lpad(n.i::text, {width}, '0')" if c == key else f't."{c}"'
                        for c in cols
                    )
                    names = ", ".join(f'"{c}"' for c in cols)
                    conn.execute(
                        f'INSERT INTO "{table}" ({names}) SELECT {select} FROM "{table}" AS t,'  # noqa: S608 - names come from the catalog
                        " generate_series(%(start)s::bigint, %(stop)s::bigint) AS n(i)"
                        f' WHERE t."{key}" = %(id)s',
                        {"prefix": prefix, "start": start, "stop": stop, "id": template},
                    )
        conn.execute("VACUUM ANALYZE")


_REDIS_CLONE = """
local template, prefix, first, last = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nkeys = tonumber(ARGV[5])
local width = 22 - #prefix
local function rename(name, id)
  local at = string.find(name, template, 1, true)
  return string.sub(name, 1, at - 1) .. id .. string.sub(name, at + #template)
end
for i = first, last do
  local id = prefix .. string.format('%0' .. width .. 'd', i)
  for k = 0, nkeys - 1 do
    local base = 6 + 3 * k
    redis.call('RESTORE', rename(ARGV[base], id), ARGV[base + 1], ARGV[base + 2])
  end
  local z = 6 + 3 * nkeys
  for k = 0, tonumber(ARGV[z]) - 1 do
    redis.call('ZADD', ARGV[z + 1 + 2 * k], ARGV[z + 2 + 2 * k], id)
  end
end
return last - first + 1
"""


def clone_redis(redis_url: str, key_prefix: str, template: str, prefix: str, count: int) -> None:
    """Copy every key of ``template`` (and its entries in sorted sets) ``count`` times."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys: list[bytes] = []
        sorted_sets: list[tuple[bytes, float]] = []
        for key in client.scan_iter(match=f"{key_prefix}*", count=5000):
            if ("{" + template + "}").encode() in key:
                keys.append(key)
            # Per-secret keys are hash-tagged; shared indexes are not.
            elif b"{" not in key and client.type(key) == b"zset":
                score = client.zscore(key, template)
                if score is not None:
                    sorted_sets.append((key, score))
        args: list[Any] = []
        for key in keys:
            ttl = client.pttl(key)
            args += [key, max(int(ttl), 0), client.dump(key)]
        args.append(len(sorted_sets))
        for name, score in sorted_sets:
            args += [name, score]
        script = client.register_script(_REDIS_CLONE)
        step = 5000
        for start in range(0, count, step):
            stop = min(start + step, count) - 1
            script(args=[template, prefix, start, stop, len(keys), *args])
    finally:
        client.close()


# -- footprint -------------------------------------------------------------------------------


def sqlite_bytes(path: Path) -> int:
    """The database file and its -wal and -shm, after a checkpoint."""
    con = sqlite3.connect(path, timeout=30)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return sum(
        p.stat().st_size
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if p.exists()
    )


def postgres_bytes(url: str) -> int:
    """Every ``burnlink_*`` table with its indexes and TOAST."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'burnlink%%'"
        ).fetchone()
    return int(row[0]) if row else 0


def redis_bytes(redis_url: str) -> int:
    """``used_memory`` of the Redis server."""
    client = redis.Redis.from_url(redis_url)
    try:
        info: dict[str, Any] = client.info("memory")
        return int(info["used_memory"])
    finally:
        client.close()


# -- the store, directly ---------------------------------------------------------------------


async def _sweep(store_url: str, now: datetime) -> tuple[int, float]:
    from burnlink.store import open_store

    store = await open_store(store_url, retention=timedelta(days=30))
    try:
        started = time.perf_counter()
        total = 0
        while True:
            purged = await store.purge_expired(now=now, limit=500)
            total += purged
            if purged < 500:
                break
        return total, time.perf_counter() - started
    finally:
        await store.aclose()


def sweep(store_url: str, *, ahead: timedelta) -> tuple[int, float]:
    """Run the sweeper's purge to completion as if it were ``ahead`` from now.

    Returns how many secrets it ended and the seconds it took.
    """
    return asyncio.run(_sweep(store_url, datetime.now(UTC) + ahead))


async def _is_live(store_url: str, secret_id: str) -> bool:
    from burnlink.store import open_store

    store = await open_store(store_url, retention=timedelta(days=30))
    try:
        return await store.peek(secret_id, now=datetime.now(UTC)) is not None
    finally:
        await store.aclose()


def is_live(store_url: str, secret_id: str) -> bool:
    """Whether the real store reads ``secret_id`` as a live secret (checks the clones)."""
    return asyncio.run(_is_live(store_url, secret_id))
