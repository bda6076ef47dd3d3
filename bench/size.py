"""The ``--size`` mode: the same measurements on an empty store and on one holding N live
secrets, the footprint of a stored secret, and what the sweeper's work grows with.

Per backend, on a fresh store:

1. sweeper cost with E expired secrets, then 4E, on an otherwise empty store;
2. create and reveal on the (nearly) empty store;
3. bulk load of N live secrets (cloned server-side), bytes per secret;
4. sweeper cost with E expired secrets among the N live ones;
5. create and reveal again, with N live secrets.

Expiry is simulated by handing the sweeper a ``now`` 700 s ahead: the clones it should end
were created with a 600 s lifetime, everything else lives an hour or more. The store never
reads a clock of its own, so this is the code path a real sweep runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench import contenders, stores
from bench.load import Load

EXPIRED = 5_000
AHEAD = timedelta(seconds=700)
SHORT_TTL = 600


@dataclass
class Backend:
    """A fresh store and how to clone into it and weigh it."""

    name: str
    url: str
    clone: Callable[[str, str, int], None]
    weigh: Callable[[], int]


@contextlib.contextmanager
def backend(name: str, work: Path, redis_url: str, postgres_url: str) -> Iterator[Backend]:
    """A fresh, empty store of ``name`` for the size run, removed afterwards."""
    if name == "sqlite":
        path = work / "size-sqlite" / "burnlink.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        yield Backend(
            name,
            f"sqlite://{path}",
            lambda t, p, n: stores.clone_sqlite(path, t, p, n),
            lambda: stores.sqlite_bytes(path),
        )
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    elif name == "redis":
        url, prefix = stores.redis_prefix_url(redis_url)
        try:
            yield Backend(
                name,
                url,
                lambda t, p, n: stores.clone_redis(redis_url, prefix, t, p, n),
                lambda: stores.redis_bytes(redis_url),
            )
        finally:
            stores.delete_redis_prefix(redis_url, prefix)
    else:
        with stores.postgres_database(postgres_url) as url:
            yield Backend(
                name,
                url,
                lambda t, p, n: stores.clone_postgres(url, t, p, n),
                lambda: stores.postgres_bytes(url),
            )


def _sweep_case(store: Backend, prefix: str, expired: int) -> dict[str, float]:
    template = stores.create_template(store.url, SHORT_TTL)
    store.clone(template, prefix, expired - 1)
    ended, seconds = stores.sweep(store.url, ahead=AHEAD)
    return {"expired": expired, "ended": ended, "seconds": round(seconds, 3)}


def run(
    name: str, size: int, settings: Load, workers: int, work: Path, redis_url: str,
    postgres_url: str,
) -> dict[str, object]:  # fmt: skip
    """Everything the size mode measures for one backend."""
    print(f"size mode, {name}: {size:,} live secrets", flush=True)
    with backend(name, work, redis_url, postgres_url) as store:
        live_template = stores.create_template(store.url, 86_400)
        sweeps = {
            "E, empty store": _sweep_case(store, "swpa", EXPIRED),
            "4E, empty store": _sweep_case(store, "swpb", 4 * EXPIRED),
        }
        contender = contenders.burnlink(f"burnlink-{name}", store.url, workers)
        empty = contenders.measure(
            contender, settings, work / f"size-{name}-empty", label=f"burnlink-{name} (empty)"
        )
        before = store.weigh()
        started = time.perf_counter()
        store.clone(live_template, "bulk", size)
        load_seconds = time.perf_counter() - started
        after = store.weigh()
        if not stores.is_live(store.url, stores.clone_id("bulk", size - 1)):
            raise RuntimeError(f"{name}: the bulk-loaded clones do not read as live secrets")
        print(f"  loaded {size:,} in {load_seconds:.1f} s", flush=True)
        sweeps[f"E, {size:,} live"] = _sweep_case(store, "swpc", EXPIRED)
        loaded = contenders.measure(
            contender,
            settings,
            work / f"size-{name}-loaded",
            label=f"burnlink-{name} ({size:,} live)",
        )
    ratios: dict[str, float] = {}
    if empty.create and loaded.create and empty.reveal and loaded.reveal:
        ratios = {
            "create_rps_empty_over_loaded": round(empty.create.rps / loaded.create.rps, 3),
            "reveal_rps_empty_over_loaded": round(empty.reveal.rps / loaded.reveal.rps, 3),
            "create_p99_loaded_over_empty": round(loaded.create.p99_ms / empty.create.p99_ms, 3),
            "reveal_p99_loaded_over_empty": round(loaded.reveal.p99_ms / empty.reveal.p99_ms, 3),
        }
    return {
        "backend": name,
        "live": size,
        "load_seconds": round(load_seconds, 1),
        "bytes_per_secret": round((after - before) / size, 1),
        "empty": empty.as_dict(),
        "loaded": loaded.as_dict(),
        "ratios": ratios,
        "sweeps": sweeps,
    }
