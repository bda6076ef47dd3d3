"""Processes the benchmark starts: each in its own process group, measured, and always stopped.

Every server runs in a new session, so its workers share its process group; stopping it
signals that group by its id (never by name), and its peak memory is the largest sum of the
group's resident set sizes seen while it ran.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_times() -> tuple[int, int]:
    """The machine's busy and total CPU ticks so far, all CPUs (``/proc/stat``; idle and
    iowait count as not busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def idle_since(before: tuple[int, int]) -> float:
    """The share of all CPUs left idle since ``cpu_times()`` returned ``before``."""
    busy0, total0 = before
    busy1, total1 = cpu_times()
    return 1 - (busy1 - busy0) / max(total1 - total0, 1)


def machine_busy(seconds: float = 1.0) -> float:
    """The share of all CPUs busy over the next ``seconds`` (others' work, before we start)."""
    before = cpu_times()
    time.sleep(seconds)
    return 1 - idle_since(before)


def _processes() -> Iterator[tuple[int, str, list[str]]]:
    """Every process now: its id, its command name and the fields of ``/proc/<id>/stat``
    after the name (``fields[2]`` is the process group, ``fields[11:15]`` the CPU ticks)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name may hold spaces and parens; the fields after its last paren do not.
        command, _, rest = stat.partition(" (")[2].rpartition(")")
        yield int(entry.name), command, rest.split()


def group_rss(pgid: int) -> int:
    """Bytes resident in every process of the process group ``pgid``."""
    total = 0
    for pid in group_pids(pgid):
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        total += resident * PAGE_SIZE
    return total


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of group ``pgid``."""
    ticks = sum(
        int(fields[11]) + int(fields[12]) for _, _, fields in _processes() if int(fields[2]) == pgid
    )
    return ticks / CLOCK_TICKS


def named_cpu_seconds(name: str) -> float:
    """CPU seconds (user + system) used so far by every process called ``name`` on the machine,
    with the children each has waited for (a PostgreSQL backend's CPU stays counted in its
    postmaster after the backend exits)."""
    ticks = sum(
        sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        for _, command, fields in _processes()
        if command == name
    )
    return ticks / CLOCK_TICKS


def group_pids(pgid: int) -> list[int]:
    """The ids of the processes in group ``pgid``, leader first."""
    pids = [pid for pid, _, fields in _processes() if int(fields[2]) == pgid]
    return sorted(pids, key=lambda pid: (pid != pgid, pid))


@dataclass
class Server:
    """A started server process group and what was measured about it."""

    name: str
    process: subprocess.Popen[bytes]
    base: str
    log: Path
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    @property
    def pgid(self) -> int:
        return self.process.pid

    def start_sampling(self, interval: float = 0.2) -> None:
        def sample() -> None:
            while not self._stop.is_set():
                self.peak_rss = max(self.peak_rss, group_rss(self.pgid))
                self._stop.wait(interval)

        self._sampler = threading.Thread(target=sample, name=f"rss-{self.name}", daemon=True)
        self._sampler.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop sampling, then SIGTERM the group, and SIGKILL it if it lingers."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        stop_group(self.process, timeout)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group led by ``process``; SIGKILL whatever is left after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while group_pids(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def launch(
    command: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session (its own process group), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``url`` answers 200, or raise if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


@contextlib.contextmanager
def serving(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    ready_path: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ready_timeout: float = 30.0,
) -> Iterator[Server]:
    """Run a server until the block ends, sampling its memory meanwhile; it must answer
    ``ready_path`` within ``ready_timeout`` seconds."""
    process = launch(command, log=log, env=env, cwd=cwd)
    server = Server(name, process, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(server.base + ready_path, process, timeout=ready_timeout)
        server.start_sampling()
        yield server
    finally:
        server.stop()
