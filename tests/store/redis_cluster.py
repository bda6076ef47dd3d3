"""A real three-master Redis Cluster for the tests, started from the ``redis-server`` binary.

``running_cluster()`` starts one ``redis-server`` per master on free loopback ports (client
port and cluster bus port chosen separately), in a temporary directory, without persistence;
joins them with ``redis-cli --cluster create``; waits until every node reports
``cluster_state:ok``; and on exit stops the servers and removes the directory. Without the
binaries the calling test skips with what to install, or fails when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final, NoReturn

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.servers import free_port

MASTERS: Final = 3
_HOST: Final = "127.0.0.1"
_START_TIMEOUT: Final = 30.0
_HOW_TO_INSTALL: Final = (
    "redis-server and redis-cli are needed for the Redis Cluster tests: "
    "apt-get install redis-server (or put both binaries on PATH)"
)


@dataclass(frozen=True)
class LocalCluster:
    """The client ports of a running test cluster, all on 127.0.0.1."""

    ports: tuple[int, ...]

    @property
    def url(self) -> str:
        """The store URL naming every master, without a key prefix."""
        return "redis+cluster://" + ",".join(f"{_HOST}:{port}" for port in self.ports)

    def node(self, port: int) -> redis.Redis:
        """A plain client on one node (close it after use)."""
        return redis.Redis(host=_HOST, port=port, socket_timeout=5)

    def owner(self, slot: int) -> int:
        """The port of the master that serves ``slot`` now."""
        with self.node(self.ports[0]) as client:
            ranges = client.execute_command("CLUSTER SLOTS")
        for first, last, master, *_ in ranges:
            if first <= slot <= last:
                return int(master[1])
        raise AssertionError(f"slot {slot} is not served")

    def move_slot(self, slot: int, target: int) -> None:
        """Move ``slot`` and its keys to the master on port ``target``, as resharding does."""
        source = self.owner(slot)
        if source == target:
            return
        with self.node(source) as src, self.node(target) as dst:
            source_id, target_id = (c.execute_command("CLUSTER MYID") for c in (src, dst))
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
            while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", _HOST, target, "", 0, 5000, "KEYS", *keys)
        for port in sorted(self.ports, key=lambda port: (port != target, port != source)):
            with self.node(port) as client:
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)

    def debug_sleep(self, port: int, seconds: float) -> None:
        """Block the node on ``port`` for ``seconds`` (``DEBUG SLEEP``), as a stalled node."""
        with self.node(port) as client:
            client.execute_command("DEBUG", "SLEEP", seconds)

    def wait_stalled(self, port: int) -> None:
        """Return once the node on ``port`` leaves a ``PING`` unanswered for 50 ms."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with redis.Redis(
                    host=_HOST, port=port, socket_timeout=0.05, retry=Retry(NoBackoff(), 0)
                ) as client:
                    client.ping()
            except redis.TimeoutError:
                return
            time.sleep(0.01)
        raise AssertionError(f"node {port} never stalled")

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under ``prefix`` on every node, one key at a time (no cross-slot)."""
        for port in self.ports:
            with self.node(port) as client:
                for key in client.scan_iter(match=f"{prefix}*", count=1000):
                    client.unlink(key)


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def _config(port: int, bus_port: int) -> str:
    return "\n".join(
        [
            f"port {port}",
            f"cluster-port {bus_port}",
            f"bind {_HOST}",
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            "cluster-node-timeout 5000",
            "appendonly no",
            'save ""',
            "daemonize no",
            "enable-debug-command local",  # DEBUG SLEEP stands in for a slow node in one test
            "loglevel warning",
            "",
        ]
    )


def _failed(what: str, directory: Path, detail: str = "") -> NoReturn:
    """Raise with the tail of every node's log (the directory is removed on the way out)."""
    logs = "".join(
        f"\n--- {log.parent.name}/redis.log\n" + log.read_text(errors="replace")[-2000:]
        for log in sorted(directory.glob("*/redis.log"))
    )
    raise RuntimeError(f"test Redis Cluster: {what} failed{detail}{logs}")


def _wait(what: str, ready: Callable[[], bool], directory: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    _failed(f"{what} (timed out)", directory)


def _answers(port: int) -> bool:
    try:
        with redis.Redis(host=_HOST, port=port, socket_timeout=1) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _cluster_ok(port: int) -> bool:
    try:
        with redis.Redis(host=_HOST, port=port, socket_timeout=1) as client:
            info = client.execute_command("CLUSTER INFO")
    except (redis.RedisError, OSError):
        return False
    return bool(
        info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(MASTERS)
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def running_cluster() -> Iterator[LocalCluster]:
    """Start a fresh cluster of ``MASTERS`` masters, yield it, stop it and delete its files."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        _unavailable(_HOW_TO_INSTALL)
    with ExitStack() as stack:
        directory = Path(tempfile.mkdtemp(prefix="burnlink-redis-cluster-"))
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        ports = _ports(2 * MASTERS)
        cluster = LocalCluster(tuple(ports[:MASTERS]))
        for port, bus_port in zip(ports[:MASTERS], ports[MASTERS:], strict=True):
            node_dir = directory / str(port)
            node_dir.mkdir()
            (node_dir / "redis.conf").write_text(_config(port, bus_port))
            log = stack.enter_context((node_dir / "redis.log").open("wb"))
            process = subprocess.Popen(  # noqa: S603 (a fixed binary and our own config file)
                [server, str(node_dir / "redis.conf")],
                cwd=node_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            stack.callback(_stop, process)
        for port in cluster.ports:
            _wait(f"node {port} start", partial(_answers, port), directory)
        created = subprocess.run(  # noqa: S603 (a fixed binary and arguments)
            [
                cli,
                "--cluster",
                "create",
                *(f"{_HOST}:{port}" for port in cluster.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=False,
            capture_output=True,
            timeout=_START_TIMEOUT,
        )
        if created.returncode != 0:
            output = (created.stdout + created.stderr).decode(errors="replace")[-2000:]
            _failed("redis-cli --cluster create", directory, f":\n{output}")
        for port in cluster.ports:
            _wait(f"node {port} joining", partial(_cluster_ok, port), directory)
        yield cluster
