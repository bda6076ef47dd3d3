"""``python -m bench.wrong_link``: what a wrong link costs for a live id and for an unknown one.

A scanner that times the ``404`` of a wrong link learns which ids are live if the two differ.
This creates ``--count`` secrets, then asks for each with a wrong link and for as many unknown
ids, interleaved in a random order, straight through the ASGI app ``burnlink serve`` runs (SQLite
store and audit log by default). Background work a request starts (the ``key.failed`` report)
runs between requests, outside what is measured.

It prints, per kind, the median CPU time of the process per request (all threads, so the SQLite
worker's too) and a one-sided Mann-Whitney p-value that live ids cost more. CPU time is less
disturbed by other processes than wall time, but on a loaded machine still moves by tens of
microseconds; ``--instructions`` counts instructions per request under valgrind's callgrind
instead (user space only), which is the same run after run: use it to judge a change.

    .venv-test/bin/python -m bench.wrong_link --kind reveal --count 2000
    .venv-test/bin/python -m bench.wrong_link --kind get --count 40 --instructions
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import callgrind

Message = dict[str, Any]
WRONG = "A" * 43
CLIENT = ("198.51.100.1", 40000)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.wrong_link", description=__doc__)
    parser.add_argument("--kind", choices=["get", "reveal"], default="reveal")
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--count", type=int, default=1000, help="live ids, and as many unknown")
    parser.add_argument("--instructions", action="store_true", help="count, under callgrind")
    return parser.parse_args(argv)


def mann_whitney_greater(first: list[int], second: list[int]) -> float:
    """One-sided p-value that ``first`` tends to be larger than ``second`` (Mann-Whitney U,
    normal approximation with tie correction; fine for samples of hundreds). The timing tests
    use it too (``tests/web/test_timing.py``, where it is tested)."""
    pooled = sorted([(value, 0) for value in first] + [(value, 1) for value in second])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    start = 0
    while start < len(pooled):
        end = start
        while end + 1 < len(pooled) and pooled[end + 1][0] == pooled[start][0]:
            end += 1
        for i in range(start, end + 1):
            ranks[i] = (start + end) / 2 + 1
        ties += (end - start + 1) ** 3 - (end - start + 1)
        start = end + 1
    n1, n2 = len(first), len(second)
    u = sum(r for r, (_, g) in zip(ranks, pooled, strict=True) if g == 0) - n1 * (n1 + 1) / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    return 0.5 * math.erfc((u - n1 * n2 / 2 - 0.5) / sigma / math.sqrt(2))


async def _call(app: Any, kind: str, secret_id: str) -> int:
    """Ask for ``secret_id`` with a wrong link; the status."""
    if kind == "get":
        method, path, body = "GET", f"/api/v1/secrets/{secret_id}", b""
        headers = [(b"authorization", f"Bearer {WRONG}".encode())]
    else:
        method, path = "POST", f"/api/v1/secrets/{secret_id}/reveal"
        body = json.dumps({"key": WRONG}).encode()
        headers = [(b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"burnlink.test"), *headers],
        "client": CLIENT, "server": ("burnlink.test", 80), "state": {},
    }  # fmt: skip
    status = 0
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            await asyncio.Event().wait()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


async def _run(args: argparse.Namespace) -> None:
    import httpx

    from burnlink.config import load_settings
    from burnlink.ids import new_secret_id
    from burnlink.web.app import create_app

    work = Path(tempfile.mkdtemp(prefix="burnlink-wrong-link-"))
    store = f"sqlite://{work / 'store.db'}" if args.store == "sqlite" else "memory://"
    off = "off"
    settings = load_settings(
        store=store,
        audit_store=f"sqlite://{work / 'audit.db'}",
        key_dir=str(work / "keys"),
        log_level="warning",
        rate_limit_create=off,
        rate_limit_reveal=off,
        rate_limit_failures=off,
        rate_limit_secret_failures=off,
        alert_not_found=off,
        alert_failed_reveals=off,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as c:
            live = [
                (await c.post("/api/v1/secrets", json={"secret": "s"})).json()["id"]
                for _ in range(args.count)
            ]
        unknown = [new_secret_id() for _ in range(args.count)]
        order = [(True, sid) for sid in live] + [(False, sid) for sid in unknown]
        random.Random(12).shuffle(order)  # noqa: S311 - an order, not a secret
        warm = min(len(order), 100)
        cost: dict[bool, list[int]] = {True: [], False: []}
        service = app.state.service

        async def settle() -> None:
            await app.state.page_opens.settled()
            await service.reporter.join()

        for n, (is_live, sid) in enumerate([*order[:warm], *order]):
            if args.instructions and n >= warm:
                with callgrind.counted(f"r{n}") as found:
                    status = await _call(app, args.kind, sid)
                spent = found[0]
            else:
                started = time.process_time_ns()
                status = await _call(app, args.kind, sid)
                spent = time.process_time_ns() - started
            await settle()
            if status != 404:
                raise SystemExit(f"expected 404, got {status}")
            if n >= warm:
                cost[is_live].append(spent)
    unit = "instructions" if args.instructions else "ns CPU"
    median = {kind: statistics.median(values) for kind, values in cost.items()}
    print(
        f"{args.kind} on {args.store}, {args.count} each: live {median[True]:,.0f} {unit},"
        f" unknown {median[False]:,.0f}, gap {median[True] - median[False]:+,.0f}"
        f" ({(median[True] - median[False]) / median[False]:+.2%}),"
        f" p(live costs more) = {mann_whitney_greater(cost[True], cost[False]):.2g}"
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (under callgrind with ``--instructions``)."""
    args = _arguments(argv)
    if args.instructions and not callgrind.UNDER_CALLGRIND:
        import sys

        callgrind.rerun("bench.wrong_link", sys.argv[1:] if argv is None else argv)
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
