"""``python -m bench.sealer``: what sealing costs per event, apart from everything else.

Fills a fresh store's outbox with ``--count`` records like a create's and a reveal's (half
each: the created ones watched, the revealed ones unwatched), then lets ``--sealers`` sealers
drain it at once, each with its own store and audit connections, as the worker processes of
``burnlink serve --workers N`` would (each taking the log's seal turn first, so that one of
them seals while the others skip; ``--without-turn`` lets them all seal), in batches of
``--batch`` (a busy server's sealer runs every 50 ms, so its batches are far smaller than
the 256 it may take). Prints the process's
CPU time (user + system, every thread) per record sealed, and how many entries the log got.
``--instructions`` counts the instructions the drain runs instead, under valgrind's callgrind
(slow, but the same from one run to the next on a loaded machine; the kernel's share, such as
fsync, is not counted).

    .venv-test/bin/python -m bench.sealer --store redis --sealers 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import callgrind
from bench.stores import delete_redis_prefix, postgres_database
from burnlink.audit import open_audit_store
from burnlink.audit.events import AuditEventType, RequestInfo, audit_event
from burnlink.audit.outbox import OutboxRecord
from burnlink.audit.sealer import Sealer
from burnlink.audit.watch import Watched
from burnlink.store import Recorded, open_store

KEY = bytes(range(32))
RETENTION = timedelta(days=1)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sealer", description=__doc__)
    parser.add_argument("--store", choices=["redis", "sqlite", "postgres"], default="redis")
    parser.add_argument("--count", type=int, default=6000, help="records to seal")
    parser.add_argument("--sealers", type=int, default=1, help="sealers at once")
    parser.add_argument("--batch", type=int, default=32, help="records per transaction")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--instructions", action="store_true", help="count, under callgrind")
    parser.add_argument(
        "--without-turn",
        action="store_true",
        help="every sealer drains at once, none waiting for the log's seal turn (as a reader's"
        " drain does, and every worker's sealer did before the turn)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _urls(args: argparse.Namespace, work: Path) -> Iterator[tuple[str, str]]:
    """The store's URL and the audit log's, as ``Settings.audit_url`` would pick it."""
    if args.store == "redis":
        # The Redis is the caller's: leave nothing behind in it.
        prefix = f"sealer-{uuid.uuid4().hex[:8]}:"
        try:
            yield f"{args.redis_url}?prefix={prefix}", f"sqlite://{work}/a.db"
        finally:
            delete_redis_prefix(args.redis_url, prefix)
    elif args.store == "sqlite":
        yield f"sqlite://{work}/burnlink.db", f"sqlite://{work}/burnlink-audit.db"
    else:
        with postgres_database(args.postgres_url) as url:
            yield url, url


def _records(count: int) -> list[bytes]:
    request = RequestInfo("203.0.113.7", None, "curl/8.5.0", "0f8e7d6c5b4a39281706f5e4d3c2b1a0")
    now = datetime.now(UTC)
    made: list[bytes] = []
    for n in range(count):
        secret = f"{n:022d}"
        created = n % 2 == 0
        event = audit_event(
            AuditEventType.SECRET_CREATED if created else AuditEventType.SECRET_VIEWED,
            at=now,
            secret_id=secret,
            request=request,
            policy=None,
            detail={"ttl": 3600} if created else {"views_left": 0},
        )
        watch = Watched(secret, now + timedelta(hours=1)) if created else None
        made.append(
            OutboxRecord(event, watch=watch, unwatch=None if created else secret).to_bytes()
        )
    return made


async def _run(args: argparse.Namespace, store_url: str, audit_url: str) -> None:
    filler = await open_store(store_url, retention=RETENTION)
    records = _records(args.count)
    for start in range(0, len(records), 100):
        await filler.record(None, [Recorded(None, r) for r in records[start : start + 100]])
    await filler.aclose()
    stores = [await open_store(store_url, retention=RETENTION) for _ in range(args.sealers)]
    audits = [await open_audit_store(audit_url, key=KEY) for _ in range(args.sealers)]
    sealers = [Sealer(s, a, batch=args.batch) for s, a in zip(stores, audits, strict=True)]
    with callgrind.counted("drain") as counted:
        cpu, wall = time.process_time(), time.perf_counter()
        if args.without_turn:
            await asyncio.gather(*(sealer.drain() for sealer in sealers))
        else:
            await asyncio.gather(*(sealer.drain_in_turn() for sealer in sealers))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sealed = (await audits[0].chain_state()).head.seq
    cost = (
        f"{counted[0] / args.count:,.0f} instructions per record"
        if counted
        else f"{1e6 * cpu / args.count:,.1f} µs CPU per record"
    )
    print(
        f"{args.store}, {args.sealers} sealer(s), batches of {args.batch}: {cost},"
        f" {wall:.2f} s, {sealed} entries for {args.count} records",
        flush=True,
    )
    for store, audit in zip(stores, audits, strict=True):
        await store.aclose()
        await audit.aclose()


def main(argv: list[str] | None = None) -> None:
    """Measure, print one line."""
    argv = sys.argv[1:] if argv is None else argv
    args = _arguments(argv)
    if args.instructions and not callgrind.UNDER_CALLGRIND:
        callgrind.rerun("bench.sealer", argv)
    with (
        tempfile.TemporaryDirectory(prefix="burnlink-sealer-") as tmp,
        _urls(args, Path(tmp)) as (
            store_url,
            audit_url,
        ),
    ):
        asyncio.run(_run(args, store_url, audit_url))


if __name__ == "__main__":
    main()
